//! ONNX models written from Rust: the official `onnx.proto` compiled by rust-protobuf
//! ([`proto`]), a [`GraphBuilder`] that names every intermediate value, and the protobuf
//! encoding ([`to_bytes`], [`from_bytes`]).
//!
//! ```
//! use onnx::{Dim, ElemType, GraphBuilder};
//!
//! let mut graph = GraphBuilder::new("double");
//! graph.input("x", ElemType::Float, &[Dim::named("batch"), Dim::Fixed(3)]);
//! let two = graph.constant_f32("two", &[], &[2.0]);
//! let y = graph.node("Mul", &["x", &two], vec![]);
//! graph.output_from(&y, "y", ElemType::Float, &[Dim::named("batch"), Dim::Fixed(3)]);
//! let model = graph.finish(17, &[("labels", "[]")]);
//! assert_eq!(model.graph.node.len(), 2); // the Mul and the Identity that names its output
//! let bytes = onnx::to_bytes(&model).unwrap();
//! assert!(!bytes.is_empty());
//! ```

use protobuf::{EnumOrUnknown, Message, MessageField};

/// The messages of `onnx.proto` (ONNX 1.19.1), generated at build time.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/proto/mod.rs"));
    pub use self::onnx::*;
}

use proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto,
    tensor_proto::DataType, tensor_shape_proto, type_proto,
};

/// The IR version written: ONNX 1.19's is 12 and opsets up to 24 need no more than 10.
pub const IR_VERSION: i64 = 10;

/// Why a model could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The protobuf encoder refused the model, or bytes are not a model.
    #[error("cannot encode or decode the ONNX model: {0}")]
    Protobuf(#[from] protobuf::Error),
}

/// Element types of graph inputs and outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemType {
    /// `float32`.
    Float,
    /// `int64`.
    Int64,
}

impl ElemType {
    fn data_type(self) -> DataType {
        match self {
            ElemType::Float => DataType::FLOAT,
            ElemType::Int64 => DataType::INT64,
        }
    }
}

/// One axis of a graph input or output: a fixed size or a named dynamic one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A size known when the model is written.
    Fixed(usize),
    /// A size chosen at run time (`dim_param`), e.g. `batch`.
    Named(String),
    /// A size the runtime infers, neither fixed nor named: a subgraph's axes that follow
    /// the outer graph's (a named one would be a new symbol to some runtimes, e.g. tract).
    Inferred,
}

impl Dim {
    /// A dynamic axis called `name`.
    pub fn named(name: &str) -> Self {
        Dim::Named(name.to_string())
    }
}

/// A node attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    /// `INT`.
    Int(i64),
    /// `FLOAT`.
    Float(f32),
    /// `INTS`.
    Ints(Vec<i64>),
    /// `FLOATS`.
    Floats(Vec<f32>),
    /// `STRING`.
    String(String),
    /// `STRINGS`.
    Strings(Vec<String>),
    /// `GRAPH`: a subgraph, e.g. the body of a `Scan` ([`GraphBuilder::subgraph`]).
    Graph(Box<GraphProto>),
}

impl Attribute {
    fn to_proto(&self, name: &str) -> AttributeProto {
        use attribute_proto::AttributeType as T;
        let mut a = AttributeProto {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let kind = match self {
            Attribute::Int(v) => {
                a.i = Some(*v);
                T::INT
            }
            Attribute::Float(v) => {
                a.f = Some(*v);
                T::FLOAT
            }
            Attribute::Ints(v) => {
                a.ints = v.clone();
                T::INTS
            }
            Attribute::Floats(v) => {
                a.floats = v.clone();
                T::FLOATS
            }
            Attribute::String(v) => {
                a.s = Some(v.as_bytes().to_vec());
                T::STRING
            }
            Attribute::Strings(v) => {
                a.strings = v.iter().map(|s| s.as_bytes().to_vec()).collect();
                T::STRINGS
            }
            Attribute::Graph(g) => {
                a.g = MessageField::some((**g).clone());
                T::GRAPH
            }
        };
        a.type_ = Some(EnumOrUnknown::new(kind));
        a
    }
}

/// Builds one graph: inputs, initializers, nodes in topological order, outputs. Every
/// node gets a unique name and its outputs unique value names, so callers only pass
/// the names they got back.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    graph: GraphProto,
    next_id: usize,
    /// Operator domains besides the default one that nodes use (version 1 of each).
    domains: std::collections::BTreeSet<String>,
}

impl GraphBuilder {
    /// An empty graph called `name`.
    pub fn new(name: &str) -> Self {
        let graph = GraphProto {
            name: Some(name.to_string()),
            ..Default::default()
        };
        GraphBuilder {
            graph,
            ..Default::default()
        }
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: &str, elem: ElemType, dims: &[Dim]) {
        self.graph.input.push(value_info(name, elem, dims));
    }

    /// Declares an optional float input: a caller may feed `name` (any size along the
    /// axes of `default_dims` that are 1), or leave it out and get `values`. ONNX spells this
    /// as a graph input backed by an initializer of the same name.
    pub fn default_input_f32(&mut self, name: &str, default_dims: &[usize], values: &[f32]) {
        let dims: Vec<Dim> = default_dims
            .iter()
            .enumerate()
            .map(|(axis, &d)| match d {
                1 => Dim::Named(format!("{name}_axis{axis}")),
                d => Dim::Fixed(d),
            })
            .collect();
        self.input(name, ElemType::Float, &dims);
        self.graph.initializer.push(TensorProto {
            float_data: values.to_vec(),
            ..tensor_header(name, default_dims, DataType::FLOAT)
        });
    }

    /// Declares the graph output `name`, computed as `value` (through an `Identity`, so
    /// the output keeps its public name whatever node made it).
    pub fn output_from(&mut self, value: &str, name: &str, elem: ElemType, dims: &[Dim]) {
        self.node_to("Identity", &[value], &[name], vec![]);
        self.graph.output.push(value_info(name, elem, dims));
    }

    /// A float32 initializer (a constant weight); returns its name, made unique.
    pub fn constant_f32(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        let name = self.unique(name);
        let tensor = TensorProto {
            float_data: values.to_vec(),
            ..tensor_header(&name, dims, DataType::FLOAT)
        };
        self.graph.initializer.push(tensor);
        name
    }

    /// An int8 initializer (quantised weights); returns its name, made unique.
    pub fn constant_i8(&mut self, name: &str, dims: &[usize], values: &[i8]) -> String {
        let name = self.unique(name);
        let tensor = TensorProto {
            raw_data: Some(values.iter().map(|&v| v as u8).collect()),
            ..tensor_header(&name, dims, DataType::INT8)
        };
        self.graph.initializer.push(tensor);
        name
    }

    /// An int64 initializer; returns its name, made unique.
    pub fn constant_i64(&mut self, name: &str, dims: &[usize], values: &[i64]) -> String {
        let name = self.unique(name);
        let tensor = TensorProto {
            int64_data: values.to_vec(),
            ..tensor_header(&name, dims, DataType::INT64)
        };
        self.graph.initializer.push(tensor);
        name
    }

    /// Adds a node with one output and returns the output's name. An empty input name
    /// leaves an optional input out, as ONNX spells it.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attributes: Vec<(&str, Attribute)>,
    ) -> String {
        self.nodes(op, inputs, 1, attributes).remove(0)
    }

    /// Adds a node with `outputs` outputs and returns their names.
    pub fn nodes(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: usize,
        attributes: Vec<(&str, Attribute)>,
    ) -> Vec<String> {
        let names: Vec<String> = (0..outputs)
            .map(|k| self.unique(&format!("{}_{k}", op.to_lowercase())))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.node_to(op, inputs, &refs, attributes);
        names
    }

    /// [`Self::nodes`] for an operator of another domain than ONNX's own, e.g.
    /// onnxruntime's `com.microsoft`; the model imports version 1 of it.
    pub fn domain_nodes(
        &mut self,
        domain: &str,
        op: &str,
        inputs: &[&str],
        outputs: usize,
        attributes: Vec<(&str, Attribute)>,
    ) -> Vec<String> {
        let names = self.nodes(op, inputs, outputs, attributes);
        if let Some(node) = self.graph.node.last_mut() {
            node.domain = Some(domain.to_string());
        }
        self.domains.insert(domain.to_string());
        names
    }

    /// A subgraph built by `build` (a `Scan` or `Loop` body, passed as
    /// [`Attribute::Graph`]): its inputs, initializers, nodes and outputs. Its value names
    /// never repeat this graph's, as ONNX requires of nested scopes.
    pub fn subgraph(&mut self, name: &str, build: impl FnOnce(&mut GraphBuilder)) -> GraphProto {
        let mut body = GraphBuilder::new(name);
        body.next_id = self.next_id;
        build(&mut body);
        self.next_id = body.next_id;
        self.domains.extend(body.domains);
        body.graph
    }

    fn node_to(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attributes: Vec<(&str, Attribute)>,
    ) {
        let node = NodeProto {
            name: Some(self.unique(op)),
            op_type: Some(op.to_string()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attributes
                .iter()
                .map(|(name, value)| value.to_proto(name))
                .collect(),
            ..Default::default()
        };
        self.graph.node.push(node);
    }

    fn unique(&mut self, stem: &str) -> String {
        self.next_id += 1;
        format!("{stem}.{}", self.next_id)
    }

    /// The model: this graph, the default-domain `opset` (and version 1 of any other
    /// domain its nodes use), and `metadata` as the model's `metadata_props` (key, value),
    /// e.g. the class names.
    pub fn finish<K: AsRef<str>, V: AsRef<str>>(
        self,
        opset: i64,
        metadata: &[(K, V)],
    ) -> ModelProto {
        ModelProto {
            ir_version: Some(IR_VERSION),
            producer_name: Some("speechrnn".to_string()),
            producer_version: Some(env!("CARGO_PKG_VERSION").to_string()),
            opset_import: std::iter::once((String::new(), opset))
                .chain(self.domains.into_iter().map(|domain| (domain, 1)))
                .map(|(domain, version)| OperatorSetIdProto {
                    domain: Some(domain),
                    version: Some(version),
                    ..Default::default()
                })
                .collect(),
            metadata_props: metadata
                .iter()
                .map(|(key, value)| StringStringEntryProto {
                    key: Some(key.as_ref().to_string()),
                    value: Some(value.as_ref().to_string()),
                    ..Default::default()
                })
                .collect(),
            graph: MessageField::some(self.graph),
            ..Default::default()
        }
    }
}

/// A tensor's name, shape and element type, its values left empty.
fn tensor_header(name: &str, dims: &[usize], data_type: DataType) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(data_type as i32),
        ..Default::default()
    }
}

fn value_info(name: &str, elem: ElemType, dims: &[Dim]) -> ValueInfoProto {
    let dim = |d: &Dim| tensor_shape_proto::Dimension {
        value: match d {
            Dim::Fixed(n) => Some(tensor_shape_proto::dimension::Value::DimValue(*n as i64)),
            Dim::Named(s) => Some(tensor_shape_proto::dimension::Value::DimParam(s.clone())),
            Dim::Inferred => None,
        },
        ..Default::default()
    };
    let tensor = type_proto::Tensor {
        elem_type: Some(elem.data_type() as i32),
        shape: MessageField::some(TensorShapeProto {
            dim: dims.iter().map(dim).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    ValueInfoProto {
        name: Some(name.to_string()),
        type_: MessageField::some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The model's protobuf encoding.
pub fn to_bytes(model: &ModelProto) -> Result<Vec<u8>, OnnxError> {
    Ok(model.write_to_bytes()?)
}

/// Decodes a model from its protobuf encoding.
pub fn from_bytes(bytes: &[u8]) -> Result<ModelProto, OnnxError> {
    Ok(ModelProto::parse_from_bytes(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_survives_encoding_and_decoding() {
        let mut graph = GraphBuilder::new("g");
        graph.input("x", ElemType::Float, &[Dim::named("n")]);
        let y = graph.node("Relu", &["x"], vec![("alpha", Attribute::Float(0.5))]);
        graph.output_from(&y, "y", ElemType::Float, &[Dim::named("n")]);
        let model = graph.finish(17, &[("k", "v")]);
        let decoded = from_bytes(&to_bytes(&model).unwrap()).unwrap();
        assert_eq!(decoded, model);
        assert_eq!(decoded.graph.node[0].attribute[0].f, Some(0.5));
        assert_eq!(decoded.metadata_props[0].value.as_deref(), Some("v"));
    }

    #[test]
    fn an_operator_of_another_domain_imports_it_and_int8_weights_keep_their_bytes() {
        let mut graph = GraphBuilder::new("g");
        graph.input("x", ElemType::Float, &[Dim::Fixed(2)]);
        let w = graph.constant_i8("w", &[3], &[-127, 0, 127]);
        let y = graph.domain_nodes("com.microsoft", "Custom", &["x", &w], 1, vec![]);
        graph.output_from(&y[0], "y", ElemType::Float, &[Dim::Fixed(2)]);
        let model = from_bytes(&to_bytes(&graph.finish(17, &[("k", "v")])).unwrap()).unwrap();
        let imports: Vec<(&str, i64)> = model
            .opset_import
            .iter()
            .map(|o| (o.domain(), o.version()))
            .collect();
        assert_eq!(imports, [("", 17), ("com.microsoft", 1)]);
        assert_eq!(model.graph.node[0].domain(), "com.microsoft");
        assert_eq!(model.graph.node[1].domain(), "");
        let weight = &model.graph.initializer[0];
        assert_eq!(weight.data_type(), DataType::INT8 as i32);
        assert_eq!(weight.raw_data(), [0x81, 0, 0x7f]);
    }

    #[test]
    fn a_subgraph_is_a_graph_attribute_whose_names_never_repeat_the_outer_ones() {
        let mut graph = GraphBuilder::new("g");
        graph.input("x", ElemType::Float, &[Dim::Fixed(2)]);
        let outer = graph.constant_f32("w", &[2], &[1.0, 2.0]);
        let body = graph.subgraph("body", |body| {
            body.input("s", ElemType::Float, &[Dim::Fixed(2)]);
            let w = body.constant_f32("w", &[2], &[3.0, 4.0]);
            let sum = body.node("Add", &["s", &w], vec![]);
            body.output_from(&sum, "s_next", ElemType::Float, &[Dim::Fixed(2)]);
        });
        let after = graph.constant_f32("w", &[2], &[5.0, 6.0]);
        let body_names: Vec<&str> = body.initializer.iter().map(|t| t.name()).collect();
        assert_eq!(body_names.len(), 1);
        assert!(![outer.as_str(), after.as_str()].contains(&body_names[0]));
        assert_ne!(outer, after);
        let y = graph.node(
            "Loop",
            &["", "", "x"],
            vec![("body", Attribute::Graph(Box::new(body.clone())))],
        );
        graph.output_from(&y, "y", ElemType::Float, &[Dim::Fixed(2)]);
        let model = from_bytes(&to_bytes(&graph.finish(17, &[("k", "v")])).unwrap()).unwrap();
        let attribute = &model.graph.node[0].attribute[0];
        assert_eq!(attribute.type_(), attribute_proto::AttributeType::GRAPH);
        assert_eq!(attribute.g.as_ref(), Some(&body));
    }
}
