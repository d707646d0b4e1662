#!/usr/bin/env python3
"""Generates crates/quill-broker/src/request_guard/schema.rs: one `walk_*` function per request
struct of the APIs Quill accepts, mirroring the field order, version conditions and encodings of
the kafka-protocol crate's decoders (which are themselves generated from Kafka's JSON schemas).

Why: kafka-protocol 0.18 pre-allocates `Vec::with_capacity(count)` from array counts read off the
wire, so a 20-byte request can ask for a 150 GB allocation and abort the process. The walker
checks every array count times the fewest bytes one element takes on the wire (a generated
`min_bytes_*` function per struct, per version) against the bytes actually left before the real
decode runs, so a count is accepted only if that many elements could really follow.

Usage: tools/gen_request_guard.py <path to kafka-protocol-0.18.x/src/messages> > src/request_guard/schema.rs
       cargo fmt -p quill-broker
Re-run (and re-run the tests) whenever the kafka-protocol version changes.
"""
import re
import sys

REQUESTS = [
    ("produce_request", "ProduceRequest"),
    ("fetch_request", "FetchRequest"),
    ("list_offsets_request", "ListOffsetsRequest"),
    ("offset_for_leader_epoch_request", "OffsetForLeaderEpochRequest"),
    ("metadata_request", "MetadataRequest"),
    ("api_versions_request", "ApiVersionsRequest"),
    ("create_topics_request", "CreateTopicsRequest"),
    ("delete_topics_request", "DeleteTopicsRequest"),
    ("delete_records_request", "DeleteRecordsRequest"),
    ("describe_configs_request", "DescribeConfigsRequest"),
    ("alter_configs_request", "AlterConfigsRequest"),
    ("describe_log_dirs_request", "DescribeLogDirsRequest"),
    ("create_partitions_request", "CreatePartitionsRequest"),
    ("incremental_alter_configs_request", "IncrementalAlterConfigsRequest"),
    ("describe_cluster_request", "DescribeClusterRequest"),
    ("find_coordinator_request", "FindCoordinatorRequest"),
    ("join_group_request", "JoinGroupRequest"),
    ("sync_group_request", "SyncGroupRequest"),
    ("heartbeat_request", "HeartbeatRequest"),
    ("leave_group_request", "LeaveGroupRequest"),
    ("offset_commit_request", "OffsetCommitRequest"),
    ("offset_fetch_request", "OffsetFetchRequest"),
    ("offset_delete_request", "OffsetDeleteRequest"),
    ("list_groups_request", "ListGroupsRequest"),
    ("describe_groups_request", "DescribeGroupsRequest"),
    ("delete_groups_request", "DeleteGroupsRequest"),
    ("init_producer_id_request", "InitProducerIdRequest"),
    ("add_partitions_to_txn_request", "AddPartitionsToTxnRequest"),
    ("add_offsets_to_txn_request", "AddOffsetsToTxnRequest"),
    ("end_txn_request", "EndTxnRequest"),
    ("txn_offset_commit_request", "TxnOffsetCommitRequest"),
    ("write_txn_markers_request", "WriteTxnMarkersRequest"),
    ("describe_transactions_request", "DescribeTransactionsRequest"),
    ("list_transactions_request", "ListTransactionsRequest"),
    ("describe_producers_request", "DescribeProducersRequest"),
    ("update_features_request", "UpdateFeaturesRequest"),
    ("describe_topic_partitions_request", "DescribeTopicPartitionsRequest"),
    ("describe_quorum_request", "DescribeQuorumRequest"),
]

FIXED = {"Int8": 1, "Int16": 2, "Int32": 4, "Int64": 8, "Float64": 8, "Boolean": 1, "Uuid": 16}


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def match_brace(text, start):
    """Index just after the brace block starting at text[start] == '{'."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    raise ValueError("unbalanced braces")


def field_types(source):
    """struct name -> {field name -> element struct type (for Vec<T>/Option<Vec<T>>/T)}."""
    result = {}
    for struct in re.finditer(r"pub struct (\w+) \{", source):
        end = match_brace(source, struct.end() - 1)
        body = source[struct.end():end]
        fields = {}
        for field in re.finditer(r"pub (\w+): ([^,\n]+),", body):
            ty = field.group(2).strip()
            inner = re.sub(r"^Option<(.*)>$", r"\1", ty)
            inner = re.sub(r"^Vec<(.*)>$", r"\1", inner)
            fields[field.group(1)] = inner.replace("super::", "")
        result[struct.group(1)] = fields
    return result


MIN_BYTES = {"String": 2, "CompactString": 1, "Bytes": 4, "CompactBytes": 1, "UnsignedVarInt": 1}


def type_min_bytes(ty, struct, field, fields):
    """Rust expression for the fewest bytes one value of a kafka-protocol type takes on the wire
    (null and empty strings, bytes and arrays are the shortest; structs sum their fields)."""
    ty = ty.strip()
    array = re.match(r"types::(Compact)?Array\((.*)\)$", ty)
    if array:
        return "1" if array.group(1) else "4"
    if ty == "types::Struct { version }":
        return f"min_bytes_{snake(fields[struct][field])}(version)"
    if ty == "types::OptionStruct { version }":
        return "1"  # the presence byte of a null struct
    name = ty.replace("types::", "")
    if name in FIXED:
        return str(FIXED[name])
    return str(MIN_BYTES[name])


def type_call(ty, struct, field, fields):
    """Rust walker expression (returning Result<(), GuardError>) for one kafka-protocol type."""
    ty = ty.strip()
    array = re.match(r"types::(Compact)?Array\((.*)\)$", ty)
    if array:
        element = type_call(array.group(2), struct, field, fields)
        element_min = type_min_bytes(array.group(2), struct, field, fields)
        method = "compact_array" if array.group(1) else "array"
        return f"walker.{method}({element_min}, |walker| {element})"
    if ty == "types::Struct { version }":
        element_type = fields[struct][field]
        return f"walk_{snake(element_type)}(walker, version)"
    if ty == "types::OptionStruct { version }":
        element_type = fields[struct][field]
        return f"walker.option_struct(|walker| walk_{snake(element_type)}(walker, version))"
    name = ty.replace("types::", "")
    if name in FIXED:
        return f"walker.skip({FIXED[name]})"
    return {
        "String": "walker.string()",
        "CompactString": "walker.compact_string()",
        "Bytes": "walker.bytes()",
        "CompactBytes": "walker.compact_bytes()",
        "UnsignedVarInt": "walker.unsigned_varint().map(|_| ())",
    }[name]


def translate(expr, struct, field, fields, indent, min_bytes=False):
    """Translates a decode expression (possibly nested if/else) into walker statements, or with
    `min_bytes` into statements adding the fewest bytes it can take to `bytes`."""
    expr = expr.strip()
    pad = "    " * indent
    if expr.startswith("if "):
        brace = expr.index("{")
        condition = expr[3:brace].strip()
        then_end = match_brace(expr, brace)
        then_part = expr[brace + 1:then_end - 1]
        rest = expr[then_end:].strip()
        out = f"{pad}if {condition} {{\n"
        out += translate(then_part, struct, field, fields, indent + 1, min_bytes)
        out += f"{pad}}}"
        if rest.startswith("else"):
            else_brace = rest.index("{")
            else_end = match_brace(rest, else_brace)
            else_part = rest[else_brace + 1:else_end - 1]
            translated = translate(else_part, struct, field, fields, indent + 1, min_bytes)
            if translated.strip():
                out += f" else {{\n{translated}{pad}}}"
        return out + "\n"
    decode = re.match(r"(types::.*)\.decode\(buf\)\?;?$", expr, re.S)
    if decode:
        if min_bytes:
            return f"{pad}bytes += {type_min_bytes(decode.group(1), struct, field, fields)};\n"
        return f"{pad}{type_call(decode.group(1), struct, field, fields)}?;\n"
    if expr.startswith("bail!"):
        if min_bytes:
            return ""
        return f"{pad}return Err(GuardError::TagNotValidForVersion);\n"
    if "=" in expr and ".decode(buf)?" in expr:  # tagged assignment: `name = types::X.decode(buf)?;`
        target, value = expr.split("=", 1)
        return translate(value.strip().rstrip(";"), struct, target.strip(), fields, indent, min_bytes)
    return ""  # a default value: nothing on the wire


def statements(body):
    """Top-level `let` statements and `if version >= N { tagged fields }` blocks of a decode body."""
    index = 0
    while index < len(body):
        let = re.compile(r"let (?:mut )?(\w+)(?:: \w+)? = ").search(body, index)
        tagged = body.find("let mut unknown_tagged_fields", index)
        if tagged != -1 and (let is None or tagged <= let.start()):
            yield ("tagged", body[tagged:])
            return
        if let is None:
            return
        # the statement ends at the first ';' at brace depth 0
        depth = 0
        for end in range(let.end(), len(body)):
            char = body[end]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
            elif char == ";" and depth == 0:
                break
        yield ("let", (let.group(1), body[let.end():end]))
        index = end + 1


def tagged_min_bytes(text):
    """The tagged-field count (one varint byte) in versions that have it; tags are optional."""
    if "num_tagged_fields" not in text:
        return ""
    prefix = text[: text.index("let num_tagged_fields")]
    condition = re.search(r"if (version >= \d+) \{", prefix)
    if condition is None:
        return "    bytes += 1;\n"
    return f"    if {condition.group(1)} {{\n        bytes += 1;\n    }}\n"


def tagged_section(text, struct, fields):
    if "num_tagged_fields" not in text:
        return ""
    prefix = text[: text.index("let num_tagged_fields")]
    condition = re.search(r"if (version >= \d+) \{", prefix)
    arms = ""
    match = text.find("match tag {")
    if match != -1:
        block = text[match + len("match tag "):match_brace(text, match + len("match tag "))]
        for arm in re.finditer(r"(\d+) => \{", block):
            arm_end = match_brace(block, arm.end() - 1)
            arm_body = block[arm.end():arm_end - 1].strip()
            translated = translate(arm_body, struct, None, fields, 4)
            arms += f"            {arm.group(1)} => {{\n{translated}                Ok(true)\n            }}\n"
    if arms:
        body = "        walker.tagged_fields(|walker, tag| match tag {\n" + arms
        body += "            _ => Ok(false),\n        })?;\n"
    else:
        body = "        walker.tagged_fields(|_, _| Ok(false))?;\n"
    if condition is None:  # always-flexible message
        return body
    return f"    if {condition.group(1)} {{\n" + body + "    }\n"


def generate(messages_dir):
    out = [
        "// @generated by tools/gen_request_guard.py from the kafka-protocol 0.18 decoders.",
        "// Do not edit by hand: re-run the generator when the kafka-protocol version changes.",
        "#![allow(clippy::all, unused_variables, unused_imports, unused_mut, dead_code)]",
        "use super::{GuardError, Walker};",
    ]
    dispatch = []
    for module, request in REQUESTS:
        source = open(f"{messages_dir}/{module}.rs").read()
        fields = field_types(source)
        out.append(f"pub mod {module} {{")
        out.append("use super::{GuardError, Walker};")
        for impl in re.finditer(r"impl Decodable for (\w+) \{", source):
            struct = impl.group(1)
            end = match_brace(source, impl.end() - 1)
            body = source[impl.end():end]
            fn_start = body.index("-> Result<Self> {") + len("-> Result<Self> ")
            fn_body = body[fn_start + 1:match_brace(body, fn_start) - 1]
            out.append(f"pub fn walk_{snake(struct)}(walker: &mut Walker<'_>, version: i16) -> Result<(), GuardError> {{")
            for kind, item in statements(fn_body):
                if kind == "let":
                    name, expr = item
                    out.append(translate(expr, struct, name, fields, 1).rstrip("\n"))
                else:
                    out.append(tagged_section(item, struct, fields).rstrip("\n"))
            out.append("    Ok(())\n}\n")
            out.append(f"/// The fewest bytes one `{struct}` takes on the wire at `version`.")
            out.append(f"pub fn min_bytes_{snake(struct)}(version: i16) -> usize {{")
            out.append("    let mut bytes = 0;")
            for kind, item in statements(fn_body):
                if kind == "let":
                    name, expr = item
                    out.append(translate(expr, struct, name, fields, 1, min_bytes=True).rstrip("\n"))
                else:
                    out.append(tagged_min_bytes(item).rstrip("\n"))
            out.append("    bytes\n}\n")
        out.append("}\n")
        dispatch.append((request, f"{module}::walk_{snake(request)}"))
    out.append("/// The walker for a request body, by API key.")
    out.append("pub fn walker_for(api_key: kafka_protocol::messages::ApiKey) -> Option<fn(&mut Walker<'_>, i16) -> Result<(), GuardError>> {")
    out.append("    use kafka_protocol::messages::ApiKey;")
    out.append("    match api_key {")
    for request, function in dispatch:
        key = request[: -len("Request")]
        out.append(f"        ApiKey::{key} => Some({function}),")
    out.append("        _ => None,\n    }\n}")
    return "\n".join(line for line in out if line != "") + "\n"


if __name__ == "__main__":
    sys.stdout.write(generate(sys.argv[1]))
