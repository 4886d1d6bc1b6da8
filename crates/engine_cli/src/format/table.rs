//! Column alignment with the semantics of Go's `text/tabwriter` as docker
//! configures it (`minwidth 10, tabwidth 1, padding 3, padchar ' '`).
//!
//! Input is text in which cells are terminated by `\t`; the text after the
//! last tab of a line is not part of any column and is written as-is. A
//! column's width is computed over each *block* of consecutive lines that
//! have a cell in that column, exactly like tabwriter does.

/// Alignment parameters.
#[derive(Debug, Clone, Copy)]
pub struct TabWriter {
    /// Minimal cell width including padding.
    pub min_width: usize,
    /// Padding added to the widest cell of a column.
    pub padding: usize,
}

impl Default for TabWriter {
    fn default() -> Self {
        // docker: tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
        TabWriter {
            min_width: 10,
            padding: 3,
        }
    }
}

struct Cell {
    text: String,
    width: usize,
}

impl TabWriter {
    /// Aligns `text` and returns the result.
    pub fn format(&self, text: &str) -> String {
        let mut lines: Vec<Vec<Cell>> = Vec::new();
        let body = text.strip_suffix('\n').unwrap_or(text);
        let had_trailing_newline = text.ends_with('\n');
        if !text.is_empty() {
            for line in body.split('\n') {
                lines.push(
                    line.split('\t')
                        .map(|c| Cell {
                            text: c.to_string(),
                            width: c.chars().count(),
                        })
                        .collect(),
                );
            }
        }
        let mut out = String::new();
        let mut widths = Vec::new();
        self.format_block(&lines, 0, lines.len(), &mut widths, &mut out);
        if !had_trailing_newline && out.ends_with('\n') {
            out.pop();
        }
        out
    }

    /// Formats lines `[line0, line1)` for the column `widths.len()`.
    fn format_block(
        &self,
        lines: &[Vec<Cell>],
        mut line0: usize,
        line1: usize,
        widths: &mut Vec<usize>,
        out: &mut String,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            // Does this line have a (tab-terminated) cell in `column`?
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            // Lines before the block are printed with the known widths.
            self.write_lines(lines, line0, this, widths, out);
            line0 = this;
            let mut width = self.min_width;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(lines[this][column].width + self.padding);
                this += 1;
            }
            widths.push(width);
            self.format_block(lines, line0, this, widths, out);
            widths.pop();
            line0 = this;
        }
        self.write_lines(lines, line0, line1, widths, out);
    }

    fn write_lines(
        &self,
        lines: &[Vec<Cell>],
        from: usize,
        to: usize,
        widths: &[usize],
        out: &mut String,
    ) {
        for line in &lines[from..to] {
            for (j, cell) in line.iter().enumerate() {
                out.push_str(&cell.text);
                if j < widths.len() && j + 1 < line.len() {
                    for _ in cell.width..widths[j] {
                        out.push(' ');
                    }
                }
            }
            out.push('\n');
        }
    }
}

/// Convenience: align with docker's defaults.
pub fn align(text: &str) -> String {
    TabWriter::default().format(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_ps_layout() {
        let text = "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES\n\
                    65e28f7ef8b6\tbusybox:local\t\"httpd -f -p 80\"\t2 minutes ago\tUp 2 minutes\t0.0.0.0:8000->80/tcp\ttr1\n";
        let want = "CONTAINER ID   IMAGE           COMMAND            CREATED         STATUS         PORTS                  NAMES\n\
                    65e28f7ef8b6   busybox:local   \"httpd -f -p 80\"   2 minutes ago   Up 2 minutes   0.0.0.0:8000->80/tcp   tr1\n";
        assert_eq!(align(text), want);
    }

    #[test]
    fn min_width_applies() {
        // "DRIVER" is 6 wide: min width 10 wins over 6+3.
        let text = "DRIVER\tVOLUME NAME\nlocal\tdata\n";
        assert_eq!(align(text), "DRIVER    VOLUME NAME\nlocal     data\n");
    }

    #[test]
    fn empty_cells_and_unicode() {
        let text = "A\tB\tC\nxé\t\tz\n";
        assert_eq!(
            align(text),
            "A         B         C\nxé                  z\n"
        );
    }

    #[test]
    fn column_blocks_are_independent() {
        // The middle line has no tab, which ends the column block.
        let text = "aaaaaaaaaaaaaaa\tb\nplain\nc\td\n";
        assert_eq!(align(text), "aaaaaaaaaaaaaaa   b\nplain\nc         d\n");
    }

    #[test]
    fn no_trailing_newline_kept() {
        assert_eq!(align("a\tb"), "a         b");
        assert_eq!(align(""), "");
    }
}
