//! The few ONNX protocol buffer messages the exporter writes, with a small encoder of its
//! own ([`Proto`]) rather than generated code: the field numbers are those of `onnx.proto`,
//! named where they are used.

use super::{IR_VERSION, OPSET};

/// A protocol buffer message being written.
#[derive(Default)]
pub(super) struct Proto(Vec<u8>);

impl Proto {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    /// A field's key: its number and wire type (0 varint, 2 length-delimited, 5 32-bit).
    fn key(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }

    fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.key(field, 0);
        // Negative numbers are ten bytes of two's complement, as protobuf encodes int64.
        self.varint(v as u64);
        self
    }

    fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    fn string(&mut self, field: u32, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }

    fn message(&mut self, field: u32, m: Proto) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

/// `TensorProto` of f32 values: dims (1), data_type (2, FLOAT = 1), name (8), raw_data (9,
/// little-endian).
pub(super) fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> Proto {
    let mut t = Proto::default();
    for &d in dims {
        t.int(1, d as i64);
    }
    t.int(2, 1).string(8, name);
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.bytes(9, &raw);
    t
}

/// `TensorProto` of int64 values (data_type INT64 = 7).
pub(super) fn int_tensor(name: &str, values: &[i64]) -> Proto {
    let mut t = Proto::default();
    t.int(1, values.len() as i64).int(2, 7).string(8, name);
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.bytes(9, &raw);
    t
}

/// `ValueInfoProto` of a float tensor whose first dimension is the batch, `N`: name (1),
/// type (2) → `TypeProto.tensor_type` (1) → elem_type (1), shape (2) → dim (1) → dim_value
/// (1) or dim_param (2).
pub(super) fn value_info(name: &str, dims: &[usize]) -> Proto {
    let mut shape = Proto::default();
    let mut batch = Proto::default();
    batch.string(2, "N");
    shape.message(1, batch);
    for &d in dims {
        let mut dim = Proto::default();
        dim.int(1, d as i64);
        shape.message(1, dim);
    }
    let mut tensor = Proto::default();
    tensor.int(1, 1).message(2, shape);
    let mut ty = Proto::default();
    ty.message(1, tensor);
    let mut info = Proto::default();
    info.string(1, name).message(2, ty);
    info
}

/// An attribute of a node: `AttributeProto` name (1), i (3), ints (8), type (20: INT = 2,
/// INTS = 7).
pub(super) enum Attribute {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
}

impl Attribute {
    fn proto(&self) -> Proto {
        let mut a = Proto::default();
        match self {
            Attribute::Int(name, v) => {
                a.string(1, name).int(3, *v).int(20, 2);
            }
            Attribute::Ints(name, vs) => {
                a.string(1, name);
                for &v in vs {
                    a.int(8, v);
                }
                a.int(20, 7);
            }
        }
        a
    }
}

/// A graph being built: its nodes, weights, inputs and outputs.
pub(super) struct Graph {
    name: &'static str,
    nodes: Vec<Proto>,
    pub(super) initializers: Vec<Proto>,
    pub(super) inputs: Vec<Proto>,
    pub(super) outputs: Vec<Proto>,
    /// Names values `t0`, `t1`, … so that no two nodes write the same one.
    counter: usize,
}

impl Graph {
    pub(super) fn new(name: &'static str) -> Graph {
        Graph {
            name,
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            counter: 0,
        }
    }

    /// Adds `op(inputs)` writing `output` (a fresh name when `None`); returns the output's
    /// name. `NodeProto`: input (1), output (2), name (3), op_type (4), attribute (5).
    pub(super) fn node(&mut self, op: &str, inputs: &[&str], attributes: &[Attribute], output: Option<&str>) -> String {
        let output = output.map_or_else(
            || {
                self.counter += 1;
                format!("t{}", self.counter)
            },
            str::to_string,
        );
        let mut n = Proto::default();
        for input in inputs {
            n.string(1, input);
        }
        n.string(2, &output)
            .string(3, &format!("{op}_{}", self.nodes.len()))
            .string(4, op);
        for a in attributes {
            n.message(5, a.proto());
        }
        self.nodes.push(n);
        output
    }

    pub(super) fn weight(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        self.initializers.push(float_tensor(name, dims, values));
        name.to_string()
    }

    /// The serialised `ModelProto`: ir_version (1), producer_name (2), producer_version (3),
    /// graph (7), opset_import (8) → version (2). `GraphProto`: node (1), name (2),
    /// initializer (5), input (11), output (12).
    pub(super) fn model(self) -> Vec<u8> {
        let mut g = Proto::default();
        for n in self.nodes {
            g.message(1, n);
        }
        g.string(2, self.name);
        for t in self.initializers {
            g.message(5, t);
        }
        for i in self.inputs {
            g.message(11, i);
        }
        for o in self.outputs {
            g.message(12, o);
        }
        let mut opset = Proto::default();
        opset.int(2, OPSET);
        let mut m = Proto::default();
        m.int(1, IR_VERSION)
            .string(2, "vae")
            .string(3, env!("CARGO_PKG_VERSION"))
            .message(7, g)
            .message(8, opset);
        m.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_negative_int64_encode_as_protobuf_does() {
        let mut p = Proto::default();
        p.varint(1);
        p.varint(300);
        assert_eq!(p.0, [0x01, 0xAC, 0x02]);
        let mut p = Proto::default();
        p.int(1, -1);
        // Key 0x08, then -1 as ten bytes of 0xFF..0x01.
        assert_eq!(p.0.len(), 11);
        assert_eq!(p.0[0], 0x08);
        assert_eq!(p.0[10], 0x01);
    }
}
