"""A model trained by `vae`, as a torch.nn.Module of PyTorch's own layers.

Written by `vae export RUN --pytorch DIR`. Load it with

    from safetensors.torch import load_file
    from model import Model
    model = Model()
    model.load_state_dict(load_file("model.safetensors"))

Images are NCHW tensors with values in [0, 1] ([N, D] for vectors). `encode` gives the
posterior's mean and log-variance (the code, for an autoencoder), `decode` one logit per
value (`torch.sigmoid` of it is the pixel), `forward` both with z drawn as in training.
A conditional VAE takes its label one-hot, [N, classes], on both sides. A model with the
Gaussian likelihood reads its data through its scaler (buffers `scaler.mean`,
`scaler.std`): `encode` takes the data as it is, `decode` gives standardised means and
`values(z)` the means in the data's units; `decoder.logvar` is each value's learned
log-variance.
"""

import math

import torch
from torch import nn
import torch.nn.functional as F

CONFIG = {}  # filled in by vae export


def _dense(module, widths, width, classes):
    """Adds fc1, fc2, ... of `widths` to `module`, the label's own columns (fc1_label) on
    the first when there is a label; returns the last width."""
    names = []
    for i, out in enumerate(widths):
        name = f"fc{i + 1}"
        setattr(module, name, nn.Linear(width, out))
        if i == 0 and classes:
            module.fc1_label = nn.Linear(classes, out, bias=False)
        names.append(name)
        width = out
    return names, width


def _run_dense(module, names, h, label):
    for i, name in enumerate(names):
        h = getattr(module, name)(h)
        if i == 0 and label is not None:
            h = h + module.fc1_label(label)
        h = F.relu(h)
    return h


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        width = 1
        for size in c["input"]:
            width *= size
        in_channels = c["input"][0] if len(c["input"]) == 3 else 1
        self.convs = []
        for i, out in enumerate(c["channels"]):
            name = f"conv{i + 1}"
            setattr(self, name, nn.Conv2d(in_channels, out, 3, stride=2, padding=1))
            self.convs.append(name)
            in_channels = out
        if c["feature_map"] is not None:
            width = c["feature_map"][0] * c["feature_map"][1] * c["feature_map"][2]
        self.dense, width = _dense(self, c["hidden"], width, c["classes"])
        if c["kind"] == "ae":
            self.fc_z = nn.Linear(width, c["latent"])
        else:
            self.fc_mu = nn.Linear(width, c["latent"])
            self.fc_logvar = nn.Linear(width, c["latent"])

    def forward(self, x, label=None):
        h = x
        for name in self.convs:
            h = F.relu(getattr(self, name)(h))
        h = _run_dense(self, self.dense, h.flatten(1), label)
        if self.c["kind"] == "ae":
            return self.fc_z(h)
        return self.fc_mu(h), self.fc_logvar(h)


class Decoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        widths = list(reversed(c["hidden"]))
        if c["feature_map"] is not None:
            widths.append(c["feature_map"][0] * c["feature_map"][1] * c["feature_map"][2])
        self.dense, width = _dense(self, widths, c["latent"], c["classes"])
        self.deconvs = []
        if c["feature_map"] is None:
            out = 1
            for size in c["input"]:
                out *= size
            self.fc_out = nn.Linear(width, out)
        else:
            channels = [c["feature_map"][0]] + list(reversed(c["channels"]))[1:] + [c["input"][0]]
            for i, padding in enumerate(c["output_padding"]):
                name = f"deconv{i + 1}"
                layer = nn.ConvTranspose2d(channels[i], channels[i + 1], 3, stride=2, padding=1,
                                           output_padding=padding)
                setattr(self, name, layer)
                self.deconvs.append(name)

    def forward(self, z, label=None):
        h = _run_dense(self, self.dense, z, label)
        if not self.deconvs:
            return self.fc_out(h).view(-1, *self.c["input"])
        h = h.view(-1, *self.c["feature_map"])
        for i, name in enumerate(self.deconvs):
            h = getattr(self, name)(h)
            if i + 1 < len(self.deconvs):
                h = F.relu(h)
        return h


class Scaler(nn.Module):
    """The training split's mean and standard deviation of each value."""

    def __init__(self, shape):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))


# The Gaussian's log-variances are used clamped to this range, as in training.
LOGVAR_RANGE = 9.2


class Model(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        self.config = dict(CONFIG if config is None else config)
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        self.gaussian = self.config["recon"] == "gaussian"
        if self.gaussian:
            values = 1
            for size in self.config["input"]:
                values *= size
            self.decoder.logvar = nn.Parameter(torch.zeros(1, values))
            self.scaler = Scaler(values)

    def standardize(self, x):
        if not self.gaussian:
            return x
        flat = x.flatten(1)
        return ((flat - self.scaler.mean) / self.scaler.std).view_as(x)

    def encode(self, x, label=None):
        """(mu, logvar) of q(z|x), or the code z of an autoencoder."""
        return self.encoder(self.standardize(x), label)

    def values(self, z, label=None):
        """Decoded values in the data's units: the pixels (sigmoid of the logits), or the
        Gaussian's means."""
        out = self.decode(z, label)
        if not self.gaussian:
            return torch.sigmoid(out)
        flat = out.flatten(1) * self.scaler.std + self.scaler.mean
        return flat.view_as(out)

    def decode(self, z, label=None):
        """One logit per value, shaped like the input."""
        return self.decoder(z, label)

    def forward(self, x, label=None):
        """(logits, mu, logvar) with z = mu + exp(logvar / 2) * eps; (logits, z) for an
        autoencoder."""
        if self.config["kind"] == "ae":
            z = self.encode(x, label)
            return self.decode(z, label), z
        mu, logvar = self.encode(x, label)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decode(z, label), mu, logvar

    def loss(self, x, label=None):
        """The training objective `vae` used, per image, averaged over the batch: the
        reconstruction loss summed over values, plus beta times the KL term for a VAE."""
        return self.loss_from(self(x, label), x)

    def loss_from(self, out, x):
        """`loss` of what `forward` returned for `x`."""
        logits = out[0]
        if self.gaussian:
            # -log N(x; s, e^v) per standardised value; + sum(log std) puts it in the data's
            # nats, as `vae` reports it.
            v = self.decoder.logvar.clamp(-LOGVAR_RANGE, LOGVAR_RANGE)
            d = (self.standardize(x) - logits).flatten(1)
            per_value = 0.5 * (d * d * torch.exp(-v) + v + math.log(2 * math.pi))
            recon = per_value.sum() + x.shape[0] * torch.log(self.scaler.std).sum()
        elif self.config["recon"] == "bce":
            recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        else:
            recon = ((torch.sigmoid(logits) - x) ** 2).sum()
        if self.config["kind"] == "ae":
            return recon / x.shape[0]
        mu, logvar = out[1], out[2]
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (recon + self.config["beta"] * kl) / x.shape[0]
