// Command testrecap reads `go test -json` on its standard input, prints the
// tests' output as `go test -v` would, and ends with a short recap of every
// failed test: its name and the last messages it logged before failing
// (the failure message is among them; of a message of many lines, the
// first and the last 20). Long suites print thousands of lines; a
// CI log that keeps only its tail still shows why a test failed.
//
//	go test -json ./test/e2e/... | go run ./hack/testrecap -recap .local/e2e-recap.txt
//
// It exits 1 unless every package reported pass, so a pipeline keeps the
// tests' verdict (a build failure or a killed run counts as failed).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// logLine is a line a test wrote through t.Log, t.Error or t.Fatal.
var logLine = regexp.MustCompile(`^\s+\S+_test\.go:\d+: `)

// continuation is a further line of a multi-line message: the testing
// package indents them by 8 spaces. The end of a message (a tool's output
// quoted in an error) is what tells why, so its last lines are kept.
var continuation = regexp.MustCompile(`^        `)

// A failed test's namespace dump (pods and events) follows its failure;
// those lines are not the reason.
var dumpLine = regexp.MustCompile(`^\s+main_test\.go:\d+: (pod|event) `)

const (
	messagesPerTest      = 4
	continuationsPerLine = 20
)

func main() {
	recapPath := flag.String("recap", "", "also write the recap to this file (removed when every test passed)")
	flag.Parse()
	os.Exit(run(os.Stdin, os.Stdout, *recapPath))
}

func run(in io.Reader, out io.Writer, recapPath string) int {
	logs := map[string][]message{} // test -> its log messages
	last := map[string]bool{}      // test -> its last line began a message kept
	var failed []string            // tests in the order they failed
	packages := map[string]string{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// Not JSON: a build error printed as is.
			_, _ = fmt.Fprintln(out, sc.Text())
			continue
		}
		switch e.Action {
		case "output":
			_, _ = io.WriteString(out, e.Output)
			if e.Test == "" {
				break
			}
			line := strings.TrimRight(e.Output, "\n")
			switch {
			case logLine.MatchString(e.Output) && !dumpLine.MatchString(e.Output):
				l := logs[e.Test]
				if len(l) == messagesPerTest {
					l = l[1:]
				}
				logs[e.Test] = append(l, message{first: line})
				last[e.Test] = true
			case last[e.Test] && continuation.MatchString(e.Output):
				m := &logs[e.Test][len(logs[e.Test])-1]
				m.more = append(m.more, line)
				if len(m.more) > continuationsPerLine {
					m.more = m.more[1:]
					m.cut = true
				}
			default:
				last[e.Test] = false
			}
		case "fail":
			if e.Test == "" {
				packages[e.Package] = "fail"
			} else {
				failed = append(failed, e.Test)
			}
		case "pass", "skip":
			if e.Test == "" {
				packages[e.Package] = e.Action
			}
		}
	}
	status := 0
	if len(packages) == 0 {
		status = 1
	}
	for _, verdict := range packages {
		if verdict == "fail" {
			status = 1
		}
	}
	recap := recapOf(failed, logs)
	if status != 0 && recap == "" {
		recap = "tests failed without a failed test: the build failed or the run was stopped (see above)\n"
	}
	if recap != "" {
		_, _ = io.WriteString(out, "\n"+recap)
	}
	if recapPath != "" {
		if recap == "" {
			_ = os.Remove(recapPath)
		} else if err := os.WriteFile(recapPath, []byte(recap), 0o644); err != nil {
			_, _ = fmt.Fprintln(out, err)
		}
	}
	return status
}

// message is one t.Log, t.Error or t.Fatal: its first line and the last of
// its further lines.
type message struct {
	first string
	more  []string
	cut   bool // further lines were left off before more
}

// recapOf names each failed test that has no failed subtest (its parents
// only fail because of it) with its last log messages.
func recapOf(failed []string, logs map[string][]message) string {
	var b strings.Builder
	for _, t := range failed {
		if slices.ContainsFunc(failed, func(o string) bool { return strings.HasPrefix(o, t+"/") }) {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("=== failed tests, each with the last lines it logged\n")
		}
		fmt.Fprintf(&b, "--- FAIL: %s\n", t)
		for _, m := range logs[t] {
			fmt.Fprintf(&b, "%s\n", truncate(m.first, 600))
			if m.cut {
				b.WriteString("        …\n")
			}
			for _, l := range m.more {
				fmt.Fprintf(&b, "%s\n", truncate(l, 300))
			}
		}
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
