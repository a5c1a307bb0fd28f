package privacy

import (
	"html"
	"strings"
	"testing"
)

// FuzzMarkdownToHTML holds the renderer to its promise that no input can
// put markup of its own on the page: every tag in the output is one the
// renderer writes (so no <script, no on*= attribute), tags nest, and every
// link goes where safeURL says — to http(s), mailto, or this site, also
// after a browser has cleaned the address up.
func FuzzMarkdownToHTML(f *testing.F) {
	for _, s := range []string{
		"# Privacy policy\n\nWe keep **your images** for 90 days.\n\n- one\n- two\n\nWrite to [us](mailto:dpo@example.com).",
		"## Contact\n[home](/privacy) and [x](https://example.com/a?b=c&d=\"e\")",
		"<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[a](javascript:alert(1))", "[a](JaVaScRiPt:alert(1))",
		"[a](//evil.example)", "[a](/\\evil.example)", "[a](/\t/evil.example)", `[a" onmouseover="x](https://e.test)`,
		"[a](https://e.test\" onclick=\"x)", "**[a](/b**)**", "\\*\\*not bold\\*\\*", "**unclosed", "[[a](/b)](/c)",
		"### h3\n#### h4\n#no space", "- \n-\n- **", "\\", "a\\", "[", "[a]", "[a](", "[a](b", "\x00<\xff>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		out := markdownToHTML(src)
		if err := checkRenderedHTML(out); err != "" {
			t.Fatalf("markdownToHTML(%q) = %q: %s", src, out, err)
		}
	})
}

// FuzzEscapeMarkdown: a config value (controller name, postal address)
// put through escapeMarkdown comes out of the renderer as exactly its own
// text, one paragraph, whatever punctuation it holds.
func FuzzEscapeMarkdown(f *testing.F) {
	for _, s := range []string{"Example GmbH", "1 Main St\nSpringfield\n\n12345", "**Bold** [link](javascript:x) # - `x`",
		"\\", "a\\*b", "# heading", "- item", "<b>&amp;</b>", "  \n \t\n", "\u00a0x\u00a0", "a\rb", "\xff\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var lines []string
		for _, l := range strings.Split(v, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		want := ""
		if len(lines) > 0 {
			want = "<p>" + html.EscapeString(strings.Join(lines, ", ")) + "</p>\n"
		}
		if got := markdownToHTML(escapeMarkdown(v)); got != want {
			t.Fatalf("escapeMarkdown(%q) renders as %q, want the literal text %q", v, got, want)
		}
	})
}

// checkRenderedHTML returns what is wrong with out, or "".
func checkRenderedHTML(out string) string {
	var open []string
	for i := 0; i < len(out); {
		lt := strings.IndexAny(out[i:], "<>")
		if lt < 0 {
			break
		}
		i += lt
		if out[i] == '>' {
			return "a bare > outside a tag"
		}
		end := strings.IndexByte(out[i:], '>')
		if end < 0 {
			return "an unclosed tag"
		}
		tag := out[i+1 : i+end]
		i += end + 1
		switch {
		case strings.HasPrefix(tag, "/"):
			name := tag[1:]
			if len(open) == 0 || open[len(open)-1] != name {
				return "closing tag </" + name + "> does not match " + strings.Join(open, ">")
			}
			open = open[:len(open)-1]
		case tag == "p" || tag == "h1" || tag == "h2" || tag == "h3" || tag == "ul" || tag == "li" || tag == "strong":
			open = append(open, tag)
		case strings.HasPrefix(tag, `a href="`) && strings.HasSuffix(tag, `"`) && len(tag) >= len(`a href=""`):
			raw := tag[len(`a href="`) : len(tag)-1]
			if strings.ContainsAny(raw, `"<>`) {
				return "link address breaks out of its attribute"
			}
			if !linkStaysSafe(html.UnescapeString(raw)) {
				return "link to " + raw + " is neither http(s), mailto nor on this site"
			}
			open = append(open, "a")
		default:
			return "tag <" + tag + "> is not one the renderer writes"
		}
	}
	if len(open) > 0 {
		return "tags left open: " + strings.Join(open, ", ")
	}
	return ""
}

// linkStaysSafe reads an address the way a browser does (the URL standard
// drops tabs and newlines anywhere and leading spaces and control
// characters, and reads a backslash as a slash in http(s) addresses) and
// reports whether it leads to http(s), mailto, or a path on this site.
func linkStaysSafe(u string) bool {
	u = strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, u)
	u = strings.TrimLeft(u, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	lower := strings.ToLower(u)
	for _, p := range []string{"https:", "http:", "mailto:"} {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	return strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//")
}
