"""Reading mail: MIME parsing, the charset layer, HTML to text, journal reports, attachment text."""
