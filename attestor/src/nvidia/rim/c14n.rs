//! Inclusive Canonical XML 1.0, without comments, over a parsed `roxmltree`
//! document (W3C REC-xml-c14n-20010315 §2; XML-DSig enveloped-signature
//! transform, REC-xmldsig-core §6.6.4).
//!
//! Used for NVIDIA RIM signatures (specs/nvidia-gpu.md §5.3): the RIMs name
//! C14N 1.1, whose output equals C14N 1.0 for documents that use neither
//! `xml:id` nor `xml:base`; both are refused here rather than handled
//! differently from 1.1. Canonicalization reads prefixes and qualified names
//! from the original text (roxmltree resolves names to URIs and drops
//! prefixes), and attribute values and text from roxmltree (normalised per XML
//! 1.0 §3.3.3 and §2.11, entity and character references expanded).
//!
//! This module never panics on any input, never recurses deeper than
//! [`MAX_DEPTH`] and never decides whether a signature is acceptable.

#![warn(clippy::indexing_slicing)]

use roxmltree::{Document, Node, NodeId, NodeType};

use crate::error::ParseError;

/// The format name canonicalization errors carry.
const FORMAT: &str = "xml c14n";

/// The XML namespace (`xml:` prefix), never declared in canonical output.
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Deepest element nesting canonicalized (RIMs nest 6 deep); deeper documents
/// are refused so recursion stays bounded.
pub const MAX_DEPTH: usize = 64;

/// Canonical form of the whole document (the document node-set), with the
/// element `exclude` and its descendants left out: the enveloped-signature
/// transform followed by inclusive C14N. Text around the excluded element is
/// kept. Comments are dropped; processing instructions outside the document
/// element are kept with the line feeds C14N puts around them.
pub fn document(doc: &Document<'_>, exclude: Option<NodeId>) -> Result<Vec<u8>, ParseError> {
    let mut c = Canon::new(doc, exclude);
    let mut seen_element = false;
    for child in doc.root().children() {
        match child.node_type() {
            NodeType::Element => {
                c.element(child, None, 0)?;
                seen_element = true;
            }
            NodeType::PI => {
                if seen_element {
                    c.out.push(b'\n');
                }
                c.pi(child);
                if !seen_element {
                    c.out.push(b'\n');
                }
            }
            // Whitespace outside the document element and comments are not
            // part of the canonical form.
            NodeType::Root | NodeType::Comment | NodeType::Text => {}
        }
    }
    Ok(c.out)
}

/// Canonical form of the document subset made of `apex` and its descendants
/// (XML-DSig `SignedInfo`): the apex carries every namespace in scope from its
/// ancestors, and the `xml:lang` / `xml:space` attributes it inherits
/// (C14N 1.0 §2.4).
pub fn subtree(doc: &Document<'_>, apex: Node<'_, '_>) -> Result<Vec<u8>, ParseError> {
    if !apex.is_element() {
        return Err(ParseError::Invalid {
            format: FORMAT,
            field: "apex",
            offset: apex.range().start,
            reason: "document subset apex is not an element".into(),
        });
    }
    let mut c = Canon::new(doc, None);
    c.element(apex, None, 0)?;
    Ok(c.out)
}

/// One namespace binding: prefix (`None` for the default namespace) and URI.
type Binding<'a> = (Option<&'a str>, &'a str);

/// The output buffer and what the whole run shares.
struct Canon<'input> {
    text: &'input str,
    exclude: Option<NodeId>,
    out: Vec<u8>,
}

impl<'input> Canon<'input> {
    fn new(doc: &Document<'input>, exclude: Option<NodeId>) -> Self {
        Self {
            text: doc.input_text(),
            exclude,
            out: Vec::new(),
        }
    }

    /// Renders `node` and its content. `parent` is the in-scope namespace set of
    /// the nearest rendered ancestor element, `None` for the apex.
    fn element<'a>(
        &mut self,
        node: Node<'a, 'input>,
        parent: Option<&[Binding<'a>]>,
        depth: usize,
    ) -> Result<(), ParseError> {
        if Some(node.id()) == self.exclude {
            return Ok(());
        }
        if depth >= MAX_DEPTH {
            return Err(ParseError::Invalid {
                format: FORMAT,
                field: "element",
                offset: node.range().start,
                reason: format!("elements nested deeper than {MAX_DEPTH}"),
            });
        }
        let qname = element_qname(self.text, node)?;
        let in_scope = in_scope(node);

        // Namespace axis: what differs from the nearest rendered ancestor.
        let mut decls: Vec<Binding<'a>> = Vec::new();
        for &(prefix, uri) in &in_scope {
            let inherited = parent.is_some_and(|p| p.contains(&(prefix, uri)));
            if !inherited {
                decls.push((prefix, uri));
            }
        }
        let parent_default = parent.and_then(|p| p.iter().find(|(pfx, _)| pfx.is_none()));
        let own_default = in_scope.iter().any(|(pfx, _)| pfx.is_none());
        if !own_default && parent_default.is_some() {
            decls.push((None, ""));
        }
        decls.sort_by(|a, b| a.0.unwrap_or("").cmp(b.0.unwrap_or("")));

        // Attribute axis, sorted by (namespace URI, local name).
        let mut attrs: Vec<(&str, &str, &str, &str)> = Vec::new();
        for attr in node.attributes() {
            let ns = attr.namespace().unwrap_or("");
            if ns == XML_NS && matches!(attr.name(), "id" | "base") {
                return Err(ParseError::Unsupported {
                    format: FORMAT,
                    what: format!(
                        "xml:{} attribute at offset {} (C14N 1.0 and 1.1 differ on it)",
                        attr.name(),
                        attr.range().start
                    ),
                });
            }
            let attr_qname = attribute_qname(self.text, &attr)?;
            attrs.push((ns, attr.name(), attr_qname, attr.value()));
        }
        if parent.is_none() {
            inherit_xml_attributes(node, &mut attrs)?;
        }
        attrs.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));

        self.out.push(b'<');
        self.out.extend_from_slice(qname.as_bytes());
        for (prefix, uri) in &decls {
            match prefix {
                None => self.out.extend_from_slice(b" xmlns=\""),
                Some(p) => {
                    self.out.extend_from_slice(b" xmlns:");
                    self.out.extend_from_slice(p.as_bytes());
                    self.out.extend_from_slice(b"=\"");
                }
            }
            escape_attribute(&mut self.out, uri);
            self.out.push(b'"');
        }
        for (_, _, attr_qname, value) in &attrs {
            self.out.push(b' ');
            self.out.extend_from_slice(attr_qname.as_bytes());
            self.out.extend_from_slice(b"=\"");
            escape_attribute(&mut self.out, value);
            self.out.push(b'"');
        }
        self.out.push(b'>');

        for child in node.children() {
            match child.node_type() {
                NodeType::Element => self.element(child, Some(&in_scope), depth + 1)?,
                NodeType::Text => escape_text(&mut self.out, child.text().unwrap_or("")),
                NodeType::PI => self.pi(child),
                NodeType::Root | NodeType::Comment => {}
            }
        }

        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(qname.as_bytes());
        self.out.push(b'>');
        Ok(())
    }

    fn pi(&mut self, node: Node<'_, '_>) {
        if let Some(pi) = node.pi() {
            self.out.extend_from_slice(b"<?");
            self.out.extend_from_slice(pi.target.as_bytes());
            if let Some(value) = pi.value.filter(|v| !v.is_empty()) {
                self.out.push(b' ');
                escape_pi(&mut self.out, value);
            }
            self.out.extend_from_slice(b"?>");
        }
    }
}

/// C14N 1.0 §2.4: an apex element receives the `xml:` attributes of its
/// ancestors that it does not set itself (nearest ancestor wins). An
/// ancestor's `xml:id` or `xml:base` is refused, as on any rendered element.
fn inherit_xml_attributes<'a>(
    node: Node<'a, '_>,
    attrs: &mut Vec<(&'a str, &'a str, &'a str, &'a str)>,
) -> Result<(), ParseError> {
    for ancestor in node.ancestors().skip(1).filter(Node::is_element) {
        for attr in ancestor.attributes() {
            if attr.namespace() != Some(XML_NS) {
                continue;
            }
            let name = attr.name();
            let qname = match name {
                "lang" => "xml:lang",
                "space" => "xml:space",
                _ => {
                    return Err(ParseError::Unsupported {
                        format: FORMAT,
                        what: format!(
                            "xml:{name} attribute at offset {} inherited by a document subset",
                            attr.range().start
                        ),
                    });
                }
            };
            if !attrs.iter().any(|a| a.0 == XML_NS && a.1 == name) {
                attrs.push((XML_NS, name, qname, attr.value()));
            }
        }
    }
    Ok(())
}

/// The namespaces in scope on `node`, without the implicit `xml` binding and
/// without an undeclared (empty) default namespace.
fn in_scope<'a>(node: Node<'a, '_>) -> Vec<Binding<'a>> {
    node.namespaces()
        .filter(|ns| ns.name() != Some("xml") && !(ns.name().is_none() && ns.uri().is_empty()))
        .map(|ns| (ns.name(), ns.uri()))
        .collect()
}

/// The element's qualified name as written in the start tag.
fn element_qname<'input>(
    text: &'input str,
    node: Node<'_, 'input>,
) -> Result<&'input str, ParseError> {
    let start = node.range().start;
    let tag = text
        .get(start..)
        .and_then(|t| t.strip_prefix('<'))
        .unwrap_or("");
    let end = tag
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(tag.len());
    let qname = tag.get(..end).unwrap_or("");
    check_qname(qname, node.tag_name().name(), "element name", start)?;
    Ok(qname)
}

/// The attribute's qualified name as written in the start tag.
fn attribute_qname<'input>(
    text: &'input str,
    attr: &roxmltree::Attribute<'_, 'input>,
) -> Result<&'input str, ParseError> {
    let start = attr.range().start;
    let rest = text.get(start..).unwrap_or("");
    let end = rest
        .find(|c: char| c.is_ascii_whitespace() || c == '=')
        .unwrap_or(rest.len());
    let qname = rest.get(..end).unwrap_or("");
    check_qname(qname, attr.name(), "attribute name", start)?;
    Ok(qname)
}

/// Cross-checks a name read from the text against the parser's local name.
fn check_qname(
    qname: &str,
    local: &str,
    field: &'static str,
    offset: usize,
) -> Result<(), ParseError> {
    let found_local = qname.rsplit_once(':').map_or(qname, |(_, l)| l);
    if found_local != local || qname.is_empty() {
        return Err(ParseError::Invalid {
            format: FORMAT,
            field,
            offset,
            reason: format!("qualified name {qname:?} does not end in local name {local:?}"),
        });
    }
    Ok(())
}

/// Text node escaping (C14N 1.0 §2.3).
fn escape_text(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'\r' => out.extend_from_slice(b"&#xD;"),
            _ => out.push(b),
        }
    }
}

/// Attribute value escaping (C14N 1.0 §2.3).
fn escape_attribute(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\t' => out.extend_from_slice(b"&#x9;"),
            b'\n' => out.extend_from_slice(b"&#xA;"),
            b'\r' => out.extend_from_slice(b"&#xD;"),
            _ => out.push(b),
        }
    }
}

/// Processing-instruction data: only carriage returns need escaping.
fn escape_pi(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\r' => out.extend_from_slice(b"&#xD;"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(xml: &str) -> String {
        let doc = Document::parse(xml).unwrap();
        String::from_utf8(document(&doc, None).unwrap()).unwrap()
    }

    #[test]
    fn empty_elements_attributes_sorted_and_escaped() {
        assert_eq!(
            canon(
                "<?xml version='1.0'?>\n<!-- c --><a z='1' b=\"x&amp;&lt;&quot;&#9;&#10;&#13;'\" xmlns:p='urn:p' p:a='2'><e/>t&amp;&lt;&gt;&#13;</a>\n"
            ),
            "<a xmlns:p=\"urn:p\" b=\"x&amp;&lt;&quot;&#x9;&#xA;&#xD;'\" z=\"1\" p:a=\"2\"><e></e>t&amp;&lt;&gt;&#xD;</a>"
        );
    }

    #[test]
    fn attribute_whitespace_normalised_and_line_endings() {
        assert_eq!(
            canon("<a b='x\ty\r\nz'>l1\r\nl2\rl3</a>"),
            "<a b=\"x y z\">l1\nl2\nl3</a>"
        );
    }

    #[test]
    fn superfluous_namespaces_removed_and_default_undeclared() {
        assert_eq!(
            canon(
                "<a xmlns='urn:d' xmlns:p='urn:p'><p:b xmlns:p='urn:p'><c xmlns=''/></p:b><d xmlns:p='urn:q'/></a>"
            ),
            "<a xmlns=\"urn:d\" xmlns:p=\"urn:p\"><p:b><c xmlns=\"\"></c></p:b><d xmlns:p=\"urn:q\"></d></a>"
        );
    }

    #[test]
    fn cdata_pis_and_outside_nodes() {
        assert_eq!(
            canon("<?pi  a?><a><![CDATA[x<y]]><?q?></a><?r b?>"),
            "<?pi a?>\n<a>x&lt;y<?q?></a>\n<?r b?>"
        );
    }

    #[test]
    fn enveloped_exclusion_keeps_whitespace() {
        let doc = Document::parse("<a>\n  <s><x/></s>\n</a>").unwrap();
        let s = doc.descendants().find(|n| n.has_tag_name("s")).unwrap();
        assert_eq!(document(&doc, Some(s.id())).unwrap(), b"<a>\n  \n</a>");
    }

    #[test]
    fn subset_apex_inherits_namespaces_and_xml_attributes() {
        let doc = Document::parse(
            "<r xmlns='urn:d' xmlns:q='urn:q' xml:lang='en'><m xmlns:z='urn:z'/><q:s xmlns:p='urn:p'><q:i xmlns:p='urn:p'/></q:s></r>",
        )
        .unwrap();
        let s = doc
            .descendants()
            .find(|n| n.has_tag_name(("urn:q", "s")))
            .unwrap();
        assert_eq!(
            String::from_utf8(subtree(&doc, s).unwrap()).unwrap(),
            "<q:s xmlns=\"urn:d\" xmlns:p=\"urn:p\" xmlns:q=\"urn:q\" xml:lang=\"en\"><q:i></q:i></q:s>"
        );
        assert!(subtree(&doc, doc.root()).is_err());
        // Nearest ancestor wins; an inherited xml:base is refused.
        let doc = Document::parse("<r xml:lang='en'><m xml:lang='de'><s/></m></r>").unwrap();
        let s = doc.descendants().find(|n| n.has_tag_name("s")).unwrap();
        assert_eq!(subtree(&doc, s).unwrap(), b"<s xml:lang=\"de\"></s>");
        let doc = Document::parse("<r xml:base='http://x/'><s/></r>").unwrap();
        let s = doc.descendants().find(|n| n.has_tag_name("s")).unwrap();
        assert!(matches!(
            subtree(&doc, s),
            Err(ParseError::Unsupported { .. })
        ));
    }

    #[test]
    fn xml_id_and_base_refused() {
        for xml in ["<a xml:id='x'/>", "<a><b xml:base='http://x/'/></a>"] {
            let doc = Document::parse(xml).unwrap();
            assert!(matches!(
                document(&doc, None),
                Err(ParseError::Unsupported { .. })
            ));
        }
    }

    #[test]
    fn depth_is_bounded() {
        let xml = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        let doc = Document::parse(&xml).unwrap();
        assert!(matches!(
            document(&doc, None),
            Err(ParseError::Invalid {
                field: "element",
                ..
            })
        ));
    }
}
