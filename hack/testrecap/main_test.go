package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestRecapNamesTheFailedLeafWithItsLastLines(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestA/bad","Output":"=== RUN   TestA/bad\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA/bad","Output":"    a_test.go:3: zero\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA/bad","Output":"    a_test.go:4: one\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA/bad","Output":"    a_test.go:5: two\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA/bad","Output":"    a_test.go:6: three\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA/bad","Output":"    a_test.go:7: timed out waiting\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA/bad","Output":"    main_test.go:72: pod x on node-a: Running\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestA/bad"}`,
		`{"Action":"output","Package":"p","Test":"TestA/ok","Output":"    a_test.go:9: fine\n"}`,
		`{"Action":"pass","Package":"p","Test":"TestA/ok"}`,
		`{"Action":"fail","Package":"p","Test":"TestA"}`,
		`{"Action":"fail","Package":"p"}`,
	}, "\n")
	var out strings.Builder
	if got := run(strings.NewReader(in), &out, ""); got != 1 {
		t.Fatalf("exit %d for a failed package, want 1", got)
	}
	_, recap, _ := strings.Cut(out.String(), "=== failed tests")
	want := "--- FAIL: TestA/bad\n    a_test.go:4: one\n    a_test.go:5: two\n    a_test.go:6: three\n    a_test.go:7: timed out waiting\n"
	if !strings.Contains(recap, want) || strings.Contains(recap, "--- FAIL: TestA\n") || strings.Contains(recap, "main_test.go") || strings.Contains(recap, "zero") {
		t.Fatalf("recap:\n%s\nwant it to hold:\n%s", recap, want)
	}
	if !strings.Contains(out.String(), "    a_test.go:9: fine\n") {
		t.Fatal("the output of passing tests was not printed")
	}
}

func TestEveryPackagePassedExitsZero(t *testing.T) {
	in := `{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:4: one\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p"}`
	var out strings.Builder
	if got := run(strings.NewReader(in), &out, ""); got != 0 || strings.Contains(out.String(), "failed") {
		t.Fatalf("exit %d, output %q", got, out.String())
	}
}

func TestABuildFailureOrAStoppedRunFails(t *testing.T) {
	var out strings.Builder
	if got := run(strings.NewReader("# p\n./a.go:3: undefined: x\n"), &out, ""); got != 1 {
		t.Fatalf("exit %d with no package verdict, want 1", got)
	}
}

func TestRecapKeepsTheEndOfAMultiLineMessage(t *testing.T) {
	lines := []string{
		`{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:80: join: exit status 1; output ends:\n"}`,
	}
	for i := 1; i <= 25; i++ {
		lines = append(lines, fmt.Sprintf(`{"Action":"output","Package":"p","Test":"TestA","Output":"        kubeadm line %d\n"}`, i))
	}
	lines = append(lines,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"    main_test.go:78: event Pod/x: Started\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"        not part of the failure\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestA"}`,
		`{"Action":"fail","Package":"p"}`)
	var out strings.Builder
	run(strings.NewReader(strings.Join(lines, "\n")), &out, "")
	_, recap, _ := strings.Cut(out.String(), "=== failed tests")
	want := "    a_test.go:80: join: exit status 1; output ends:\n        …\n        kubeadm line 6\n"
	if !strings.Contains(recap, want) || !strings.Contains(recap, "        kubeadm line 25\n") ||
		strings.Contains(recap, "kubeadm line 5\n") || strings.Contains(recap, "not part of") {
		t.Fatalf("recap:\n%s\nwant the message's first line and its last 20 lines", recap)
	}
}
