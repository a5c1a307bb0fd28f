// Package browsertest drives a real zimage server, started in-process over
// real HTTP on loopback, with Debian's chromium through chromedp: the
// journey a person takes through the web UI, screenshots of the main pages,
// axe-core accessibility checks and paint timings. It lives apart from
// app/web so that the slow browser tests never delay that package's unit
// tests. All of its code is in _test.go files; chromium must be installed
// (apt-get install -y chromium), and the tests fail, never skip, without it.
package browsertest
