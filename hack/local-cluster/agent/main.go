// Command agent is the end-to-end suites' workload: a static binary with
// Go's own resolver, so it behaves the same in any scratch image.
//
//	agent serve PORT BODY     answer every HTTP request with BODY
//	agent get URL...          print each URL's body, one per line
//	agent lookup NAME...      print each name's addresses, one line per name
//
// get and lookup retry each step for up to 30 s: a new Service or pod name
// takes a moment to reach kube-proxy and CoreDNS.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: agent serve PORT BODY | get URL ... | lookup NAME ...: got %q", args)
	}
	switch args[0] {
	case "serve":
		if len(args) != 3 {
			return fmt.Errorf("usage: agent serve PORT BODY")
		}
		body := args[2]
		srv := &http.Server{
			Addr:              ":" + args[1],
			ReadHeaderTimeout: 5 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, body)
			}),
		}
		return srv.ListenAndServe()
	case "get":
		client := &http.Client{Timeout: 5 * time.Second}
		for _, url := range args[1:] {
			body, err := retry(func() (string, error) { return get(client, url) })
			if err != nil {
				return err
			}
			fmt.Println(body)
		}
		return nil
	case "lookup":
		for _, name := range args[1:] {
			addrs, err := retry(func() (string, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				addrs, err := net.DefaultResolver.LookupHost(ctx, name)
				sort.Strings(addrs)
				return strings.Join(addrs, " "), err
			})
			if err != nil {
				return err
			}
			fmt.Println(addrs)
		}
		return nil
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func get(client *http.Client, url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return strings.TrimSpace(string(data)), nil
}

// retry runs step until it succeeds or 30 s have passed.
func retry(step func() (string, error)) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := step()
		if err == nil || time.Now().After(deadline) {
			return out, err
		}
		fmt.Fprintln(os.Stderr, "retrying:", err)
		time.Sleep(500 * time.Millisecond)
	}
}
