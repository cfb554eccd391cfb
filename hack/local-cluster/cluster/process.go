package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemon is a long-running process of the cluster. It is started detached
// (its own session), so it outlives the command that started it, and its PID
// is recorded so that only it is ever stopped.
type daemon struct {
	name  string   // pid and log file name: kubelet-node-a
	netns string   // network namespace to run in
	args  []string // command line
	env   []string
	// restart runs the command again 5 s after it exits, as systemd's
	// Restart=always does for a machine's kubelet; the log says each time.
	restart bool
}

// supervise is the shell loop a daemon with restart runs under ($0 is the
// daemon's name): SIGTERM stops the command and the loop.
const supervise = `trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
while :; do
	"$@" & pid=$!
	wait "$pid"; code=$?
	echo "local-cluster: $0 exited with status $code; restarting it in 5s" >&2
	sleep 5 & wait $!
done`

func (c *Cluster) pidFile(name string) string { return c.path("pids", name+".pid") }
func (c *Cluster) logFile(name string) string { return c.path("logs", name+".log") }

// start runs d in its network namespace. nsenter --net enters only the
// network namespace: `ip netns exec` would remount /sys privately and hide
// the cgroup hierarchies kubelet and containerd need.
func (c *Cluster) start(d daemon) error {
	if pid, alive := c.pid(d.name); alive {
		return fmt.Errorf("%s already runs as pid %d", d.name, pid)
	}
	for _, dir := range []string{c.path("pids"), c.path("logs")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	logf, err := os.OpenFile(c.logFile(d.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// The child has its own descriptor; closing ours cannot lose its output.
	defer func() { _ = logf.Close() }()
	args := []string{"--net=/run/netns/" + d.netns, "--"}
	if d.restart {
		args = append(args, "sh", "-c", supervise, d.name)
	}
	args = append(args, d.args...)
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), d.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", d.name, err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(c.pidFile(d.name), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return err
	}
	// Reap it if it dies while this process still runs, so it never lingers
	// as a zombie that looks alive.
	go func() { _ = cmd.Wait() }()
	return nil
}

// pid reads the recorded PID of a daemon and says whether that process is
// alive and still the daemon (same start command), so a recycled PID is
// never mistaken for it.
func (c *Cluster) pid(name string) (int, bool) {
	data, err := os.ReadFile(c.pidFile(name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, processIsOurs(pid, c.State)
}

// processIsOurs is true when pid is alive, not a zombie, and its command
// line names the cluster's state dir, as every daemon's does (nsenter execs
// the daemon in place, so the command line is the daemon's own).
func processIsOurs(pid int, state string) bool {
	if st, _, ok := procStat(pid); !ok || st == "Z" {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return bytes.Contains(cmdline, []byte(state))
}

// stop sends SIGTERM to a recorded daemon, then SIGKILL after grace, and
// forgets its PID.
func (c *Cluster) stop(name string, grace time.Duration) {
	pid, alive := c.pid(name)
	if alive {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(grace)
		for time.Now().Before(deadline) {
			if _, alive := c.pid(name); !alive {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if _, alive := c.pid(name); alive {
			// A restart loop's command goes with it.
			for _, child := range children(pid) {
				_ = syscall.Kill(child, syscall.SIGKILL)
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
			for i := 0; i < 50; i++ {
				if _, alive := c.pid(name); !alive {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	_ = os.Remove(c.pidFile(name))
}

// children are the processes whose parent is pid.
func children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, ok := procStat(child); ok && ppid == pid {
			out = append(out, child)
		}
	}
	return out
}

// procStat reads a process's state and parent from /proc/PID/stat
// ("pid (comm) state ppid ...", where comm may hold spaces and
// parentheses); ok is false when there is no such process.
func procStat(pid int) (state string, ppid int, ok bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0], ppid, err == nil
}

// run executes a short command and returns its combined output.
func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// inNetns runs a short command inside a network namespace.
func inNetns(netns string, name string, args ...string) (string, error) {
	return run("nsenter", append([]string{"--net=/run/netns/" + netns, "--", name}, args...)...)
}

// waitFor polls cond every interval until it returns true or timeout passes.
func waitFor(what string, timeout, interval time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("timed out after %s waiting for %s: %w", timeout, what, last)
			}
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}

// writeFile writes data, creating the parent folders.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, mode)
}
