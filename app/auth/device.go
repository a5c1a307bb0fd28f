package auth

import (
	"net/netip"
	"strings"
)

// DeviceSummary turns a User-Agent into a short label for the sessions
// list ("Firefox on Linux"). A handful of families is enough for a person
// to recognise their own devices; the full string is never stored, since it
// helps fingerprinting and tells the person nothing more.
func DeviceSummary(ua string) string {
	if ua == "" {
		return "Unknown device"
	}
	browser := "Unknown browser"
	for _, b := range []struct{ token, name string }{
		// Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chromium/", "Chromium"},
		{"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"}, {"Wget/", "Wget"},
		{"python-requests/", "Python"}, {"Go-http-client/", "Go"}, {"zimage", "zimage"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, o := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			system = o.name
			break
		}
	}
	if system == "" {
		return browser
	}
	return browser + " on " + system
}

// ApproxPlace returns the client's network rather than its address: IPv4
// to /24, IPv6 to /48. No GeoIP database ships with Z Image (none may be
// downloaded on a closed network), so a network is the "approximate place"
// a person can match against where they were, and it identifies a household
// or office rather than one device.
func ApproxPlace(addr netip.Addr) string {
	if !addr.IsValid() {
		return ""
	}
	addr = addr.Unmap().WithZone("")
	bits := 24
	if addr.Is6() {
		bits = 48
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}
