// Command bench measures Quorum's snapshot and restore against etcd's own
// tools on the same member in the same run: a real etcd on loopback filled
// with about 1 GiB, snapshotted by the manager's backup job (the code a
// backup pod runs: stream, verify, commit) and by `etcdctl snapshot save`,
// then restored through the backup job's fetch-and-verify plus etcdutl,
// against a plain `etcdutl snapshot restore`. It prints throughputs, the
// ratio, and the backup job's peak memory.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"quorum.dev/quorum/internal/backupjob"
)

func main() {
	sizeMiB := flag.Int("size-mib", 1024, "data to fill etcd with, in MiB")
	bin := flag.String("bin", "bin/k8s", "folder with etcd, etcdctl and etcdutl")
	manager := flag.String("manager", "bin/manager", "the manager binary")
	flag.Parse()
	if err := run(*sizeMiB, *bin, *manager); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(sizeMiB int, bin, manager string) error {
	dir, err := os.MkdirTemp("", "quorum-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	client, peer := freePort(), freePort()
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", client)
	etcd := exec.Command(filepath.Join(bin, "etcd"), "--name=bench", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+endpoint, "--advertise-client-urls="+endpoint,
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", peer), fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", peer),
		fmt.Sprintf("--initial-cluster=bench=http://127.0.0.1:%d", peer), "--quota-backend-bytes=8589934592", "--log-level=error")
	if err := etcd.Start(); err != nil {
		return err
	}
	defer func() { _ = etcd.Process.Kill(); _ = etcd.Wait() }()

	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	start := time.Now()
	if err := fill(cl, sizeMiB); err != nil {
		return err
	}
	fmt.Printf("filled etcd with %d MiB in %s\n", sizeMiB, time.Since(start).Round(time.Millisecond))

	// Snapshot: the backup job (stream, sha256 trailer and database check,
	// fsync and rename) against etcdctl (stream and sha256 check).
	ours, ourTime, rss, err := timed(manager, "backup-job", "snapshot", "--cluster=bench", "--endpoints="+endpoint, "--tls-dir=",
		"--volume-dir="+filepath.Join(dir, "ours"), "--location=pvc://bench", "--keep-last=1")
	if err != nil {
		return fmt.Errorf("backup job: %w: %s", err, ours)
	}
	theirsFile := filepath.Join(dir, "etcdctl.db")
	out, theirTime, _, err := timed(filepath.Join(bin, "etcdctl"), "--endpoints="+endpoint, "snapshot", "save", theirsFile)
	if err != nil {
		return fmt.Errorf("etcdctl: %w: %s", err, out)
	}
	fi, err := os.Stat(theirsFile)
	if err != nil {
		return err
	}
	size := float64(fi.Size()) / (1 << 20)
	fmt.Printf("snapshot size %.0f MiB\n", size)
	res, err := backupjob.ParseResult(ours)
	if err != nil {
		return err
	}
	fmt.Printf("snapshot  quorum backup job   %7.2fs  %7.1f MiB/s  (Go heap %d MiB; peak RSS %d MiB, most of it the snapshot file mapped read-only to verify it)\n",
		ourTime.Seconds(), size/ourTime.Seconds(), res.HeapBytes>>20, rss>>10)
	fmt.Printf("snapshot  etcdctl snapshot    %7.2fs  %7.1f MiB/s\n", theirTime.Seconds(), size/theirTime.Seconds())
	fmt.Printf("snapshot  ratio (quorum/etcdctl throughput) %.2f\n", theirTime.Seconds()/ourTime.Seconds())

	// Restore: fetch-and-verify plus etcdutl (with the revision bump
	// Kubernetes needs) against a plain etcdutl restore.
	fetched := filepath.Join(dir, "fetched.db")
	restoreArgs := func(file, dataDir string, extra ...string) []string {
		return append([]string{"snapshot", "restore", file, "--data-dir=" + dataDir, "--name=bench",
			"--initial-cluster=bench=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380"}, extra...)
	}
	out, fetchTime, _, err := timed(manager, "backup-job", "fetch", "--cluster=bench", "--volume-dir="+filepath.Join(dir, "ours"), "--out="+fetched)
	if err != nil {
		return fmt.Errorf("fetch: %w: %s", err, out)
	}
	out, ourRestore, _, err := timed(filepath.Join(bin, "etcdutl"), restoreArgs(fetched, filepath.Join(dir, "restored-ours"), "--bump-revision=1000000000", "--mark-compacted")...)
	if err != nil {
		return fmt.Errorf("etcdutl restore (ours): %w: %s", err, out)
	}
	out, plainRestore, _, err := timed(filepath.Join(bin, "etcdutl"), restoreArgs(theirsFile, filepath.Join(dir, "restored-plain"))...)
	if err != nil {
		return fmt.Errorf("etcdutl restore: %w: %s", err, out)
	}
	total := fetchTime + ourRestore
	fmt.Printf("restore   quorum fetch+verify %7.2fs, etcdutl with bump %7.2fs: %7.2fs  %7.1f MiB/s\n", fetchTime.Seconds(), ourRestore.Seconds(), total.Seconds(), size/total.Seconds())
	fmt.Printf("restore   etcdutl restore     %7.2fs  %7.1f MiB/s\n", plainRestore.Seconds(), size/plainRestore.Seconds())
	fmt.Printf("restore   ratio (quorum/etcdutl throughput) %.2f\n", plainRestore.Seconds()/total.Seconds())
	return nil
}

// fill writes sizeMiB of 64 KiB values, 16 to a transaction, 4 writers.
func fill(cl *clientv3.Client, sizeMiB int) error {
	value := strings.Repeat("x", 64<<10)
	txns := sizeMiB // 16 x 64 KiB = 1 MiB per transaction
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for t := w; t < txns; t += 4 {
				ops := make([]clientv3.Op, 0, 16)
				for i := 0; i < 16; i++ {
					ops = append(ops, clientv3.OpPut(fmt.Sprintf("/bench/%06d/%02d", t, i), value))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := cl.Txn(ctx).Then(ops...).Commit()
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// timed runs a command and returns its output, wall time and peak RSS (KiB).
func timed(name string, args ...string) (string, time.Duration, int64, error) {
	start := time.Now()
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(start)
	var rss int64
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss
		}
	}
	return string(out), elapsed, rss, err
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}
