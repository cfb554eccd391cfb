package join

import (
	"regexp"
	"testing"
)

// TestRandomToken: kubeadm's token shape ([a-z0-9]{6}.[a-z0-9]{16}), no
// two alike, and every character of the alphabet used.
func TestRandomToken(t *testing.T) {
	shape := regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)
	seen := map[string]bool{}
	chars := map[rune]bool{}
	for i := 0; i < 1000; i++ {
		tok := RandomToken(6) + "." + RandomToken(16)
		if !shape.MatchString(tok) {
			t.Fatalf("token %q", tok)
		}
		if seen[tok] {
			t.Fatalf("token %q twice", tok)
		}
		seen[tok] = true
		for _, r := range tok {
			chars[r] = true
		}
	}
	if len(chars) != 37 {
		t.Fatalf("%d distinct characters in 1000 tokens, want 36 and the dot", len(chars))
	}
}

// TestCommand: the printed command kubeadm takes.
func TestCommand(t *testing.T) {
	c := Command{Endpoint: "api.example:6443", Token: "abcdef.0123456789abcdef", CAHashes: []string{"sha256:aa", "sha256:bb"}}
	want := "kubeadm join api.example:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:aa --discovery-token-ca-cert-hash sha256:bb"
	if c.String() != want || c.TokenID() != "abcdef" {
		t.Fatalf("%q (id %q), want %q", c.String(), c.TokenID(), want)
	}
}
