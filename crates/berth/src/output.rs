//! Printing: docker-style aligned tables and a small subset of Go templates (`{{.Field}}`, `{{json .X}}`,
//! `table …`) for `--format`, evaluated over the same JSON that `inspect` prints.

use serde_json::Value;

/// Prints rows as columns separated by three spaces, like docker's tabwriter.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{:<w$}   ", c, w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// Renders a Go-template-like string against `v`.
pub fn template(tpl: &str, v: &Value) -> String {
    let tpl = tpl.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = tpl.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        out.push_str(&eval(after[..end].trim(), v));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn eval(expr: &str, v: &Value) -> String {
    let words: Vec<&str> = expr.split_whitespace().collect();
    match words.as_slice() {
        ["json", path] => serde_json::to_string(lookup(v, path)).unwrap_or_default(),
        ["upper", path] => plain(lookup(v, path)).to_uppercase(),
        ["lower", path] => plain(lookup(v, path)).to_lowercase(),
        ["index", path, key] => {
            let base = lookup(v, path);
            let found = match key.parse::<usize>() {
                Ok(i) => base.get(i),
                Err(_) => base.get(key.trim_matches('"')),
            };
            plain(found.unwrap_or(&Value::Null))
        }
        [path] => plain(lookup(v, path)),
        _ => String::new(),
    }
}

fn lookup<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut cur = v;
    for part in path.trim_start_matches('.').split('.').filter(|p| !p.is_empty()) {
        cur = cur.get(part).unwrap_or(&Value::Null);
    }
    cur
}

/// Go's `%v` formatting of a JSON value.
fn plain(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => {
            format!(
                "map[{}]",
                o.iter()
                    .map(|(k, x)| format!("{k}:{}", plain(x)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        other => other.to_string(),
    }
}

/// Prints items for `--format`: "json" (one object per line), "table TEMPLATE" (with a header made of the
/// field names), or a template per item. Returns false when `format` is "table" alone (caller prints its
/// default table).
pub fn formatted(format: &str, items: &[Value]) -> bool {
    if format == "json" {
        for i in items {
            println!("{}", serde_json::to_string(i).unwrap_or_default());
        }
        return true;
    }
    if format == "table" {
        return false;
    }
    if let Some(t) = format.strip_prefix("table") {
        let t = t.trim_start();
        let names: Vec<String> = t
            .split("{{")
            .skip(1)
            .filter_map(|s| s.split("}}").next())
            .map(|s| s.trim().trim_start_matches('.').to_ascii_uppercase())
            .collect();
        println!("{}", names.join("\t"));
        for i in items {
            println!("{}", template(t, i));
        }
        return true;
    }
    for i in items {
        println!("{}", template(format, i));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates() {
        let v = json!({"State": {"Status": "running", "ExitCode": 0}, "Name": "/web", "Env": ["A=1", "B=2"], "L": {"k": "v"}});
        assert_eq!(template("{{.State.Status}}", &v), "running");
        assert_eq!(template("{{ .State.ExitCode }} {{.Name}}", &v), "0 /web");
        assert_eq!(template("{{json .Env}}", &v), r#"["A=1","B=2"]"#);
        assert_eq!(template("{{.Env}}", &v), "[A=1 B=2]");
        assert_eq!(template("{{index .L \"k\"}}", &v), "v");
        assert_eq!(template("{{.Missing}}", &v), "<no value>");
    }
}
