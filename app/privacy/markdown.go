package privacy

import (
	"html"
	"strings"
)

// markdownToHTML converts the small Markdown subset the policy template
// uses: "#" to "###" headings, paragraphs, "- " lists, **bold**, [links](url)
// and backslash escapes. Every piece of text is HTML-escaped, and links
// other than https, http, mailto and site-relative ones are shown as text,
// so no input can smuggle markup or script into the page. A general
// Markdown library would be a new dependency with far more surface than
// this one template needs.
func markdownToHTML(src string) string {
	var b strings.Builder
	var para []string
	inList := false
	flushPara := func() {
		if len(para) > 0 {
			b.WriteString("<p>")
			b.WriteString(inline(strings.Join(para, " ")))
			b.WriteString("</p>\n")
			para = nil
		}
	}
	closeList := func() {
		if inList {
			b.WriteString("</ul>\n")
			inList = false
		}
	}
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimRight(line, " \t\r")
		switch {
		case strings.TrimSpace(line) == "":
			flushPara()
			closeList()
		case headingLevel(line) > 0:
			flushPara()
			closeList()
			n := headingLevel(line)
			tag := string(rune('0' + n))
			b.WriteString("<h" + tag + ">" + inline(strings.TrimSpace(line[n:])) + "</h" + tag + ">\n")
		case strings.HasPrefix(line, "- "):
			flushPara()
			if !inList {
				b.WriteString("<ul>\n")
				inList = true
			}
			b.WriteString("<li>" + inline(strings.TrimSpace(line[2:])) + "</li>\n")
		default:
			if inList {
				closeList()
			}
			para = append(para, strings.TrimSpace(line))
		}
	}
	flushPara()
	closeList()
	return b.String()
}

// headingLevel returns 1 to 3 for a "#", "##" or "###" heading line, else 0.
func headingLevel(line string) int {
	n := 0
	for n < len(line) && line[n] == '#' {
		n++
	}
	if n == 0 || n > 3 || n >= len(line) || line[n] != ' ' {
		return 0
	}
	return n
}

// inline renders bold, links and escapes within one block.
func inline(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case s[i] == '\\' && i+1 < len(s) && isMarkdownPunct(s[i+1]):
			b.WriteString(html.EscapeString(s[i+1 : i+2]))
			i += 2
		case strings.HasPrefix(s[i:], "**"):
			end := indexUnescaped(s, "**", i+2)
			if end < 0 {
				b.WriteString("**")
				i += 2
				continue
			}
			b.WriteString("<strong>" + inline(s[i+2:end]) + "</strong>")
			i = end + 2
		case s[i] == '[':
			text, url, next, ok := parseLink(s, i)
			if !ok {
				b.WriteString("[")
				i++
				continue
			}
			if safeURL(url) {
				b.WriteString(`<a href="` + html.EscapeString(url) + `">` + inline(text) + "</a>")
			} else {
				b.WriteString(inline(text))
			}
			i = next
		default:
			j := i + 1
			for j < len(s) && s[j] != '\\' && s[j] != '*' && s[j] != '[' {
				j++
			}
			b.WriteString(html.EscapeString(s[i:j]))
			i = j
		}
	}
	return b.String()
}

// parseLink reads "[text](url)" starting at s[i] == '['.
func parseLink(s string, i int) (text, url string, next int, ok bool) {
	close := indexUnescaped(s, "]", i+1)
	if close < 0 || close+1 >= len(s) || s[close+1] != '(' {
		return "", "", 0, false
	}
	end := strings.IndexByte(s[close+2:], ')')
	if end < 0 {
		return "", "", 0, false
	}
	return s[i+1 : close], s[close+2 : close+2+end], close + 3 + end, true
}

// indexUnescaped finds sub in s at or after from, skipping backslash
// escapes.
func indexUnescaped(s, sub string, from int) int {
	for i := from; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && isMarkdownPunct(s[i+1]) {
			i++
			continue
		}
		if strings.HasPrefix(s[i:], sub) {
			return i
		}
	}
	return -1
}

func safeURL(u string) bool {
	// Browsers drop tabs and newlines inside an address and read "\" as
	// "/", so "/\evil.example" and "/<tab>/evil.example" lead off-site like
	// "//evil.example". No address of ours needs spaces, controls or "\".
	if strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) {
		return false
	}
	lower := strings.ToLower(u)
	for _, p := range []string{"https://", "http://", "mailto:"} {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	return strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//")
}

const markdownPunct = "\\*[]()_#-`<>!"

func isMarkdownPunct(c byte) bool { return strings.IndexByte(markdownPunct, c) >= 0 }

// escapeMarkdown makes a config value literal text in the template's
// Markdown: its punctuation cannot become bold or a link, and its line
// breaks (a multi-line postal address) cannot start a heading or a list.
func escapeMarkdown(v string) string {
	var lines []string
	for _, l := range strings.Split(v, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	v = strings.Join(lines, ", ")
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if isMarkdownPunct(v[i]) {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
