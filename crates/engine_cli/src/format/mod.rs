//! Output formatting: tables, human-readable values, JSON and Go templates.

pub mod human;
pub mod json;
pub mod table;
pub mod template;

use crate::error::{CliError, CliResult};
use json::Value;
use template::Template;

/// Parses a user template, mapping errors to docker's exit code 64.
pub fn parse_template(src: &str) -> CliResult<Template> {
    Template::parse(src).map_err(|e| CliError::Status {
        message: format!("template parsing error: {e}"),
        code: 64,
    })
}

/// Docker's pre-processing of `--format`: literal `\t` and `\n` become real.
fn unescape(format: &str) -> String {
    format
        .trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n")
}

/// Renders list rows the way docker's formatter does for `--format`:
/// "" / "table" → `default_table`; "json" → one JSON object per line;
/// "table TEMPLATE" → aligned table with headers; otherwise one template
/// execution per row.
pub fn render_rows(
    format: &str,
    default_table: &str,
    rows: &[Value],
    headers: &Value,
) -> CliResult<String> {
    let format = match format {
        "" | "table" => default_table,
        other => other,
    };
    if format == "json" {
        let mut out = String::new();
        for r in rows {
            out.push_str(&r.to_json());
            out.push('\n');
        }
        return Ok(out);
    }
    let (is_table, body) = match format.strip_prefix("table") {
        Some(rest) if rest.is_empty() || rest.starts_with(' ') => (true, rest),
        _ => (false, format),
    };
    let tpl = parse_template(&unescape(body))?;
    let mut out = String::new();
    if is_table {
        out.push_str(&tpl.execute_header(headers).map_err(exec_err)?);
        out.push('\n');
    }
    for r in rows {
        out.push_str(&tpl.execute(r).map_err(exec_err)?);
        out.push('\n');
    }
    if is_table {
        out = table::align(&out);
    }
    Ok(out)
}

fn exec_err(e: template::TemplateError) -> CliError {
    CliError::Status {
        message: format!("template parsing error: {e}"),
        code: 1,
    }
}

/// Executes a `-f` template once per element (inspect, version, info).
pub fn render_each(format: &str, items: &[Value]) -> CliResult<String> {
    let tpl = parse_template(format)?;
    let mut out = String::new();
    for it in items {
        out.push_str(&tpl.execute(it).map_err(exec_err)?);
        out.push('\n');
    }
    Ok(out)
}

/// Builds an object Value from string pairs (sorted by key, like docker's JSON).
pub fn obj(pairs: Vec<(&str, String)>) -> Value {
    let mut fields: Vec<(String, Value)> = pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::Str(v)))
        .collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Obj(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> (Vec<Value>, Value) {
        let rows = vec![
            obj(vec![("ID", "abc".into()), ("Names", "web".into())]),
            obj(vec![("ID", "defghijklmnop".into()), ("Names", "db".into())]),
        ];
        let headers = obj(vec![
            ("ID", "CONTAINER ID".into()),
            ("Names", "NAMES".into()),
        ]);
        (rows, headers)
    }

    #[test]
    fn table_and_templates() {
        let (rows, headers) = rows();
        let default = "table {{.ID}}\t{{.Names}}";
        assert_eq!(
            render_rows("", default, &rows, &headers).unwrap(),
            "CONTAINER ID    NAMES\nabc             web\ndefghijklmnop   db\n"
        );
        assert_eq!(
            render_rows("{{.Names}}", default, &rows, &headers).unwrap(),
            "web\ndb\n"
        );
        assert_eq!(
            render_rows("table {{.Names}}\\t{{.ID}}", default, &rows, &headers).unwrap(),
            "NAMES     CONTAINER ID\nweb       abc\ndb        defghijklmnop\n"
        );
        assert_eq!(
            render_rows("json", default, &rows[..1], &headers).unwrap(),
            "{\"ID\":\"abc\",\"Names\":\"web\"}\n"
        );
        assert_eq!(
            render_rows("", default, &[], &headers).unwrap(),
            "CONTAINER ID   NAMES\n"
        );
    }

    #[test]
    fn bad_template_exit_code() {
        let (rows, headers) = rows();
        let e = render_rows("{{.ID", "", &rows, &headers).unwrap_err();
        assert_eq!(e.exit_code(), 64);
        assert!(e
            .to_string()
            .starts_with("template parsing error: template: "));
    }
}
