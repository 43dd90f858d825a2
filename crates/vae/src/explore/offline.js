// The explorer's requests answered in the page itself, from window.EMBEDDED (written by
// `vae export --html`): the same answers as `vae serve`'s /api/*, with the encoder and the
// decoder run here in plain JavaScript. Sums run in double precision over the f32 weights,
// so a pixel can differ from the server's by one level of 255 at most.
window.OFFLINE = (() => {
  const E = window.EMBEDDED;
  const bytesOf = (b64) => { const s = atob(b64); const b = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i); return b; };
  const floatsOf = (b64) => new Float32Array(bytesOf(b64).buffer);
  const layer = (l) => ({ ...l, weight: floatsOf(l.weight), bias: floatsOf(l.bias), label: l.label ? floatsOf(l.label) : null });
  const models = new Map(E.models.map((m) => [m.info.name, {
    ...m, encoder: m.encoder.map(layer), heads: m.heads.map(layer), decoder: m.decoder.map(layer),
    images: bytesOf(m.test_images),
  }]));

  // y = x·Wᵀ + b (+ c·Lᵀ for a layer that reads the label c), then ReLU where the layer has it.
  function dense(l, x, c) {
    const y = new Float32Array(l.outputs);
    const classes = l.label && c ? c.length : 0;
    for (let o = 0; o < l.outputs; o++) {
      let s = l.bias[o];
      const row = o * l.inputs;
      for (let i = 0; i < l.inputs; i++) s += l.weight[row + i] * x[i];
      for (let k = 0; k < classes; k++) s += l.label[o * classes + k] * c[k];
      y[o] = l.relu && s < 0 ? 0 : s;
    }
    return y;
  }
  function encode(m, x, c) {
    let h = Float32Array.from(x);
    for (const l of m.encoder) h = dense(l, h, c);
    return m.heads.map((l) => dense(l, h, c));
  }
  function decode(m, z, c) {
    let h = Float32Array.from(z);
    for (const l of m.decoder) h = dense(l, h, c);
    return h.map((s) => 1 / (1 + Math.exp(-s)));
  }
  const toPixels = (v) => Array.from(v, (x) => Math.round(Math.min(1, Math.max(0, x)) * 255));
  // A CVAE's one-hot label (its class `label`); nothing for the other models.
  function condition(m, label) {
    const k = m.info.classes;
    if (!k) {
      if (label !== undefined && label !== null) throw new Error(`${m.info.name} is not a cvae: it takes no label`);
      return null;
    }
    if (!Number.isInteger(label) || label < 0 || label >= k) throw new Error(`label: a cvae needs a class in 0..${k - 1}`);
    const c = new Float32Array(k); c[label] = 1; return c;
  }
  function project(m, code) {
    if (!m.pca) return [code[0] || 0, code[1] || 0];
    const [mean, axes] = m.pca;
    return axes.map((a) => a.reduce((s, w, i) => s + w * (code[i] - mean[i]), 0));
  }
  function testImage(m, index) {
    const n = m.test_labels.length;
    if (!Number.isInteger(index) || index < 0 || index >= n) throw new Error(`test image ${index}: this page holds ${m.info.name}'s first ${n}`);
    const size = m.info.height * m.info.width * m.info.channels;
    return { image: Array.from(m.images.subarray(index * size, (index + 1) * size), (b) => b / 255), label: m.test_labels[index] };
  }
  // The codes between a and b, both ends included, straight or along the great circle, as
  // `latent::interpolate` computes them.
  function path(a, b, frames, slerp) {
    const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    const cos = Math.min(1, Math.max(-1, a.reduce((s, x, i) => s + x * b[i], 0) / Math.max(norm(a) * norm(b), 1e-12)));
    const omega = Math.acos(cos);
    const spherical = slerp && Math.abs(Math.sin(omega)) > 1e-6;
    return Array.from({ length: frames }, (_, f) => {
      const t = f / (frames - 1);
      const [wa, wb] = spherical ? [Math.sin((1 - t) * omega) / Math.sin(omega), Math.sin(t * omega) / Math.sin(omega)] : [1 - t, t];
      return a.map((x, i) => Math.fround(wa * x + wb * b[i]));
    });
  }
  function normals(n, seed) {
    // mulberry32, then Box-Muller: a page's own draws, repeatable by seed.
    let s = (seed >>> 0) || 1;
    const uniform = () => { s = (s + 0x6D2B79F5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296; };
    return Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
  }

  return async function api(path_, body) {
    const [pathname, query = ""] = path_.split("?");
    const q = new URLSearchParams(query);
    const find = () => {
      const name = body ? body.model : q.get("model");
      const m = models.get(name);
      if (!m) throw new Error(`no model named ${name} on this page`);
      return m;
    };
    switch (pathname) {
      case "/api/models":
        return { models: E.models.map((m) => m.info) };
      case "/api/latent-map": {
        const m = find();
        const n = Math.min(Number(q.get("limit") || 2000), m.map.points.length);
        return { ...m.map, points: m.map.points.slice(0, n), labels: m.map.labels.slice(0, n) };
      }
      case "/api/decode": {
        const m = find();
        return { images: body.z.map((z, i) => toPixels(decode(m, z, condition(m, body.labels ? body.labels[i] : body.label)))) };
      }
      case "/api/encode": {
        const m = find();
        const c = condition(m, body.label);
        const [mu, logvar] = encode(m, body.image, c);
        return {
          mu: Array.from(mu), sigma: logvar ? Array.from(logvar, (v) => Math.exp(0.5 * v)) : null,
          reconstruction: toPixels(decode(m, mu, c)), map_point: project(m, mu),
        };
      }
      case "/api/sample": {
        const m = find();
        const sampler = q.get("sampler") || "prior";
        if (sampler !== "prior") throw new Error(`sampler: this page draws from the prior only, not ${sampler}`);
        const n = Number(q.get("n") || 16);
        const label = q.has("label") ? Number(q.get("label")) : undefined;
        const z = normals(n * m.info.latent, Number(q.get("seed") || 0));
        const codes = Array.from({ length: n }, (_, r) => z.slice(r * m.info.latent, (r + 1) * m.info.latent));
        const labelOf = (r) => (m.info.classes ? (label === undefined ? r % m.info.classes : label) : label);
        return { codes, images: codes.map((c, r) => toPixels(decode(m, c, condition(m, labelOf(r))))) };
      }
      case "/api/interpolate": {
        const m = find();
        const end = (e, field) => {
          if (e.index !== undefined && e.image === undefined) {
            const t = testImage(m, e.index);
            return { image: t.image, label: m.info.classes ? t.label : undefined };
          }
          if (e.image !== undefined && e.index === undefined) return { image: e.image, label: e.label };
          throw new Error(`${field}: give a test image's index, or an image`);
        };
        const a = end(body.from, "from"), b = end(body.to, "to");
        const steps = body.steps || 10;
        const ca = condition(m, a.label ?? b.label), cb = condition(m, b.label ?? a.label);
        const za = Array.from(encode(m, a.image, ca)[0]), zb = Array.from(encode(m, b.image, cb)[0]);
        const codes = path(za, zb, steps + 1, !!body.slerp);
        const labels = ca ? path(Array.from(ca), Array.from(cb), steps + 1, false) : null;
        return {
          codes, images: codes.map((z, f) => toPixels(decode(m, z, labels ? labels[f] : null))),
          from_image: toPixels(a.image), to_image: toPixels(b.image),
        };
      }
      default:
        throw new Error(`${pathname}: this page answers the explorer's own requests only`);
    }
  };
})();
