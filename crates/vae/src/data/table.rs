//! CSV tables of numbers: one item per row, one value per column, plain or gzip-compressed.
//!
//! The first row is a header when it has text where the next row has numbers. scikit-learn's
//! bundled tables open with a line of their own, `ROWS,COLUMNS,CLASS NAME,...`
//! (`569,30,malignant,benign`): that line is recognised by its counts, and then the last
//! column is the label, an index into the class names it lists. Otherwise a column is the
//! label only when asked for (`--label-column`: its header name, its position counted from
//! 1, or `last`); its cells may be any text, and every other cell must be a finite number.
//!
//! Nothing unbounded: the text read stops at [`MAX_DATA_BYTES`] (so does a gzip bomb), and
//! a bad cell is named by line and column.

use std::io::Read;
use std::path::Path;

use super::idx::{MAX_DATA_BYTES, open_maybe_gzip};
use crate::error::{Error, Result};

/// A table as read: its feature columns as numbers, and the label column's cells if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The feature columns' names: from the header, else `column N` (counted from 1).
    pub columns: Vec<String>,
    pub rows: usize,
    /// rows x columns, row after row.
    pub values: Vec<f32>,
    /// The label column: its name and each row's cell.
    pub labels: Option<(String, Vec<String>)>,
    /// Class names given by scikit-learn's first line, in label-index order.
    pub class_names: Option<Vec<String>>,
}

/// Reads the table in `path` (gzip-compressed or not).
pub fn read(path: &Path, label_column: Option<&str>) -> Result<Table> {
    parse(open_maybe_gzip(path)?, path, label_column)
}

/// A row as read, with the line it starts on.
struct Row {
    line: u64,
    cells: Vec<String>,
}

/// Parses a table from a stream; `source` names it in errors.
pub fn parse(reader: impl Read, source: &Path, label_column: Option<&str>) -> Result<Table> {
    let bad = |problem: String| Error::data_file(source, problem);
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader.take(MAX_DATA_BYTES + 1));
    let mut record = csv::StringRecord::new();
    let mut next_row = |csv: &mut csv::Reader<_>| -> Result<Option<Row>> {
        let more = csv.read_record(&mut record).map_err(|e| csv_error(source, e))?;
        if csv.position().byte() > MAX_DATA_BYTES {
            return Err(bad(format!("more than {} MiB of text", MAX_DATA_BYTES >> 20)));
        }
        let line = record.position().map_or(0, |p| p.line());
        Ok(more.then(|| Row {
            line,
            cells: record.iter().map(str::to_string).collect(),
        }))
    };
    let Some(first) = next_row(&mut csv)? else {
        return Err(bad("holds no rows".into()));
    };
    let second = next_row(&mut csv)?;
    let is_number = |cell: &str| cell.parse::<f64>().is_ok();
    let sklearn = second
        .as_ref()
        .and_then(|second| sklearn_header(&first.cells, &second.cells));
    let header = match &second {
        _ if sklearn.is_some() => None,
        Some(second) => first
            .cells
            .iter()
            .zip(&second.cells)
            .any(|(a, b)| !is_number(a) && is_number(b))
            .then(|| first.cells.clone()),
        None => (!first.cells.iter().all(|c| is_number(c))).then(|| first.cells.clone()),
    };
    let mut pending: Vec<Row> = Vec::new();
    if header.is_none() && sklearn.is_none() {
        pending.push(first);
    }
    pending.extend(second);
    let Some(width) = pending.first().map(|r| r.cells.len()) else {
        return Err(bad("holds a header and no data rows".into()));
    };
    let width_line = pending[0].line;
    if let Some(h) = &header
        && h.len() != width
    {
        return Err(bad(format!(
            "the header (line 1) has {} columns, line {width_line} has {width}",
            h.len()
        )));
    }
    let name_of = |c: usize| match &header {
        Some(h) => h[c].clone(),
        None => format!("column {}", c + 1),
    };
    let label = match (label_column, &sklearn) {
        (Some(asked), _) => Some(find_column(asked, header.as_deref(), width).map_err(bad)?),
        (None, Some(_)) => Some(width - 1),
        (None, None) => None,
    };
    if label.is_some() && width < 2 {
        return Err(bad("a label column and no other: nothing to learn from".into()));
    }
    let columns: Vec<String> = (0..width).filter(|&c| Some(c) != label).map(name_of).collect();
    let mut values = Vec::new();
    let mut labels = Vec::new();
    let most_values = (MAX_DATA_BYTES / 4) as usize;
    let mut rows = 0;
    let mut take = |row: Row| -> Result<()> {
        if row.cells.len() != width {
            return Err(bad(format!(
                "line {} has {} columns, line {width_line} has {width}",
                row.line,
                row.cells.len()
            )));
        }
        for (c, cell) in row.cells.into_iter().enumerate() {
            if Some(c) == label {
                labels.push(cell);
                continue;
            }
            let problem = match cell.parse::<f64>() {
                Ok(v) if (v as f32).is_finite() => {
                    values.push(v as f32);
                    continue;
                }
                Ok(v) if v.is_finite() => "is beyond the range of 32-bit floats",
                Ok(_) => "is not a finite number",
                Err(_) if cell.is_empty() => "is empty",
                Err(_) => "is not a number",
            };
            let shown = if cell.is_empty() {
                String::new()
            } else {
                format!(" '{}'", clipped(&cell))
            };
            return Err(bad(format!(
                "line {}, column {} ({}):{shown} {problem}",
                row.line,
                c + 1,
                name_of(c)
            )));
        }
        if values.len() > most_values {
            return Err(bad(format!("more values than fit in {} MiB", MAX_DATA_BYTES >> 20)));
        }
        rows += 1;
        Ok(())
    };
    for row in pending {
        take(row)?;
    }
    while let Some(row) = next_row(&mut csv)? {
        take(row)?;
    }
    let class_names = match sklearn {
        Some((declared, names)) => {
            if declared != rows {
                return Err(bad(format!(
                    "the first line declares {declared} rows, the file holds {rows}"
                )));
            }
            for (i, cell) in labels.iter().enumerate() {
                if !cell.parse::<usize>().is_ok_and(|k| k < names.len()) {
                    return Err(bad(format!(
                        "row {}: label '{}' is not a class index from 0 to {} (the first line names {} classes)",
                        i + 1,
                        clipped(cell),
                        names.len() - 1,
                        names.len()
                    )));
                }
            }
            Some(names)
        }
        None => None,
    };
    Ok(Table {
        columns,
        rows,
        values,
        labels: label.map(|c| (name_of(c), labels)),
        class_names,
    })
}

/// scikit-learn's first line `ROWS,COLUMNS,NAME,...` before a row of COLUMNS features and a
/// class index: the row count and the class names.
fn sklearn_header(cells: &[String], next: &[String]) -> Option<(usize, Vec<String>)> {
    let [rows, columns, names @ ..] = cells else {
        return None;
    };
    let (rows, columns) = (rows.parse::<usize>().ok()?, columns.parse::<usize>().ok()?);
    let named = !names.is_empty() && names.iter().all(|n| n.parse::<f64>().is_err());
    let indexed = next.last().is_some_and(|l| l.parse::<usize>().is_ok());
    (named && indexed && columns + 1 == next.len()).then(|| (rows, names.to_vec()))
}

/// The column `asked` names: a header name, a position counted from 1, or `last`.
fn find_column(asked: &str, header: Option<&[String]>, width: usize) -> std::result::Result<usize, String> {
    if let Some(c) = header.and_then(|h| h.iter().position(|name| name == asked)) {
        return Ok(c);
    }
    if asked == "last" {
        return Ok(width - 1);
    }
    if let Ok(n) = asked.parse::<usize>() {
        return match n {
            1.. if n <= width => Ok(n - 1),
            _ => Err(format!("--label-column {n}: the table has columns 1 to {width}")),
        };
    }
    Err(match header {
        Some(h) => {
            let shown: Vec<&str> = h.iter().take(8).map(String::as_str).collect();
            let more = if h.len() > 8 { ", ..." } else { "" };
            format!(
                "--label-column '{asked}': no column of that name (the header has {}{more})",
                shown.join(", ")
            )
        }
        None => format!(
            "--label-column '{asked}': the table has no header to find that name in; give a position from 1 to {width}, or last"
        ),
    })
}

/// A cell shown in an error: at most 40 characters.
fn clipped(cell: &str) -> String {
    match cell.char_indices().nth(40) {
        Some((at, _)) => format!("{}...", &cell[..at]),
        None => cell.to_string(),
    }
}

/// A reader's error as a one-line problem of the file.
fn csv_error(source: &Path, e: csv::Error) -> Error {
    let line = e.position().map(|p| format!("line {}: ", p.line())).unwrap_or_default();
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(source, io),
        csv::ErrorKind::Utf8 { .. } => Error::data_file(source, format!("{line}not UTF-8 text")),
        other => Error::data_file(source, format!("{line}{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str, label: Option<&str>) -> Result<Table> {
        parse(text.as_bytes(), Path::new("t.csv"), label)
    }

    fn problem(text: &str, label: Option<&str>) -> String {
        table(text, label).unwrap_err().to_string()
    }

    #[test]
    fn plain_headed_and_labelled_tables() {
        let plain = table("1,2\n3,4.5\n", None).unwrap();
        assert_eq!((plain.rows, plain.values.clone()), (2, vec![1.0, 2.0, 3.0, 4.5]));
        assert_eq!(plain.columns, ["column 1", "column 2"]);
        let headed = table("a, b ,kind\n1,2,cat\n3,4,dog\n", Some("kind")).unwrap();
        assert_eq!(headed.columns, ["a", "b"]);
        assert_eq!(headed.labels, Some(("kind".into(), vec!["cat".into(), "dog".into()])));
        // A text label column in the first row is not mistaken for a header.
        let unheaded = table("1,2,cat\n3,4,dog\n", Some("last")).unwrap();
        assert_eq!(unheaded.rows, 2);
        assert_eq!(table("1,2,cat\n3,4,dog\n", Some("3")).unwrap().labels, unheaded.labels);
    }

    #[test]
    fn sklearn_first_line_names_the_classes() {
        let t = table("2,2,malignant,benign\n1.5,2,0\n3,4,1\n", None).unwrap();
        assert_eq!((t.rows, t.columns.len()), (2, 2));
        assert_eq!(t.class_names, Some(vec!["malignant".into(), "benign".into()]));
        assert!(problem("3,2,a,b\n1,2,0\n3,4,1\n", None).contains("declares 3 rows, the file holds 2"));
        assert!(problem("2,2,a,b\n1,2,0\n3,4,2\n", None).contains("label '2' is not a class index from 0 to 1"));
    }

    #[test]
    fn bad_cells_are_named_by_line_and_column() {
        assert_eq!(
            problem("a,b\n1,2\n3,x\n", None),
            "t.csv: line 3, column 2 (b): 'x' is not a number"
        );
        assert!(problem("1,2\n3,nan\n", None).contains("line 2, column 2 (column 2): 'nan' is not a finite number"));
        assert!(problem("1,2\n3,inf\n", None).contains("'inf' is not a finite number"));
        assert!(problem("1,2\n3,1e300\n", None).contains("'1e300' is beyond the range of 32-bit floats"));
        assert!(problem("1,2\n3,\n", None).contains("line 2, column 2 (column 2): is empty"));
        assert!(problem("1,2,3\n1,2\n", None).contains("line 2 has 2 columns, line 1 has 3"));
        assert!(problem("a,b,c\n1,2\n", None).contains("the header (line 1) has 3 columns, line 2 has 2"));
        assert!(problem("", None).contains("holds no rows"));
        assert!(problem("a,b\n", None).contains("a header and no data rows"));
        assert!(problem("a,b\n1,2\n", Some("c")).contains("no column of that name (the header has a, b)"));
        assert!(problem("1,2\n", Some("9")).contains("columns 1 to 2"));
        assert!(problem("1\n2\n", Some("last")).contains("nothing to learn from"));
        assert!(table(&"1,2\n".repeat(3), None).is_ok());
    }

    #[test]
    fn not_utf8_is_a_problem() {
        let e = parse(&b"1,2\n\xff\xfe,3\n"[..], Path::new("t.csv"), None).unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
    }
}
