//! `inspect` (containers, images, networks, volumes): prints the daemon's raw
//! JSON re-indented like docker (4 spaces, daemon key order), or applies a
//! `--format` template per object.

use super::{out, Ctx};
use crate::error::{CliError, CliResult};
use crate::flags::Parsed;
use crate::format::json::{indent_raw, Value};
use crate::format::{parse_template, template};

const ORDER: [&str; 4] = ["container", "image", "network", "volume"];

fn object_path(kind: &str, name: &str) -> String {
    match kind {
        "container" => format!("/containers/{name}/json"),
        "image" => format!("/images/{name}/json"),
        "network" => format!("/networks/{name}"),
        _ => format!("/volumes/{name}"),
    }
}

async fn fetch(ctx: &Ctx, name: &str, kind: Option<&str>, p: &Parsed) -> CliResult<String> {
    let kinds: Vec<&str> = match kind {
        Some(k) => vec![k],
        None => ORDER.to_vec(),
    };
    for k in &kinds {
        let query: Vec<(&str, String)> = match *k {
            "container" if p.bool("size") => vec![("size", "1".to_string())],
            "network" if p.bool("verbose") => vec![("verbose", "true".to_string())],
            _ => Vec::new(),
        };
        match ctx.client.get_text(&object_path(k, name), &query).await {
            Ok(text) => return Ok(text),
            // docker passes the daemon's message through for networks.
            Err(e) if e.is_not_found() && kind != Some("network") => continue,
            Err(e) => return Err(e),
        }
    }
    Err(CliError::Other(match kind {
        Some(k) => format!("Error: No such {k}: {name}"),
        None => format!("Error: No such object: {name}"),
    }))
}

/// Renders fetched raw objects for the given `--format`.
pub fn render(raws: &[String], format: &str) -> CliResult<(String, Vec<String>)> {
    let mut errors = Vec::new();
    if format.is_empty() {
        let joined = format!("[{}]", raws.join(","));
        return Ok((format!("{}\n", indent_raw(&joined, "", "    ")), errors));
    }
    let mut out = String::new();
    if format == "json" {
        for r in raws {
            match Value::parse(r.trim()) {
                Ok(v) => {
                    out.push_str(&v.to_json());
                    out.push('\n');
                }
                Err(e) => errors.push(format!("unable to read inspect data: {e}")),
            }
        }
        return Ok((out, errors));
    }
    let tpl: template::Template = parse_template(format)?;
    for r in raws {
        let v = match Value::parse(r.trim()) {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("unable to read inspect data: {e}"));
                continue;
            }
        };
        match tpl.execute(&v) {
            Ok(s) => {
                out.push_str(&s);
                out.push('\n');
            }
            Err(e) => errors.push(format!("template parsing error: {e}")),
        }
    }
    Ok((out, errors))
}

/// `inspect` / `container inspect` / `image inspect` / `network inspect` /
/// `volume inspect`.
pub async fn inspect(ctx: &Ctx, p: &Parsed, kind: Option<&str>) -> CliResult<()> {
    if let Some(k) = kind {
        if !ORDER.contains(&k) {
            return Err(CliError::Other(format!(
                "{k:?} is not a valid value for --type"
            )));
        }
    }
    let format = p.str_or("format", "");
    if !format.is_empty() && format != "json" {
        parse_template(format)?;
    }
    let mut raws = Vec::new();
    let mut errors = Vec::new();
    for name in &p.args {
        match fetch(ctx, name, kind, p).await {
            Ok(r) => raws.push(r),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let (text, render_errors) = render(&raws, format)?;
    out(&text);
    errors.extend(render_errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Status {
            message: errors.join("\n"),
            code: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_output_is_indented_array() {
        let raws =
            vec!["{\"Id\":\"a\",\"State\":{\"Status\":\"running\"},\"Args\":[]}\n".to_string()];
        let (out, errs) = render(&raws, "").unwrap();
        assert!(errs.is_empty());
        assert_eq!(
            out,
            "[\n    {\n        \"Id\": \"a\",\n        \"State\": {\n            \"Status\": \"running\"\n        },\n        \"Args\": []\n    }\n]\n"
        );
        assert_eq!(render(&[], "").unwrap().0, "[]\n");
    }

    #[test]
    fn templates_and_json() {
        let raws = vec![
            "{\"Id\":\"a\",\"State\":{\"Status\":\"running\"}}".to_string(),
            "{\"Id\":\"b\",\"State\":{\"Status\":\"exited\"}}".to_string(),
        ];
        assert_eq!(
            render(&raws, "{{.State.Status}}").unwrap().0,
            "running\nexited\n"
        );
        assert_eq!(
            render(&raws, "{{json .State}}").unwrap().0,
            "{\"Status\":\"running\"}\n{\"Status\":\"exited\"}\n"
        );
        assert_eq!(
            render(&raws[..1], "json").unwrap().0,
            "{\"Id\":\"a\",\"State\":{\"Status\":\"running\"}}\n"
        );
        assert_eq!(render(&raws, "{{.Id").unwrap_err().exit_code(), 64);
        let (_, errs) = render(&raws[..1], "{{.Id.X}}").unwrap();
        assert_eq!(errs.len(), 1);
    }
}
