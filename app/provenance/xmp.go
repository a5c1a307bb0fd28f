package provenance

import (
	"encoding/xml"
	"strings"
)

// xmpPacket is the XMP Z Image writes: IPTC's digital source type, which
// readers (and the EU AI Act's "machine-readable" marking) look for, and
// xmp:CreatorTool, the software that made the file. Nothing else: no
// dates, no ids, no prompt, no person, no host. The packet is the same for
// every file of one kind, so it cannot tie files to each other or to
// anyone.
func xmpPacket(sourceType, agent string) []byte {
	var b strings.Builder
	b.WriteString("<?xpacket begin=\"\uFEFF\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n")
	b.WriteString("<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n")
	b.WriteString(" <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n")
	b.WriteString("  <rdf:Description rdf:about=\"\"\n")
	b.WriteString("    xmlns:Iptc4xmpExt=\"http://iptc.org/std/Iptc4xmpExt/2008-02-29/\"\n")
	b.WriteString("    xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\"\n")
	b.WriteString("    Iptc4xmpExt:DigitalSourceType=\"")
	xml.EscapeText(&b, []byte(sourceType))
	b.WriteString("\"\n    xmp:CreatorTool=\"")
	xml.EscapeText(&b, []byte(agent))
	b.WriteString("\"/>\n </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end=\"r\"?>")
	return []byte(b.String())
}
