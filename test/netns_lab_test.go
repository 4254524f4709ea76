package test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// The multi-host lab of netns_test.go: "hosts" that are Linux network
// namespaces, each joined to the test's own namespace by a veth pair with
// addresses of its own, and each running a peer service in a child
// process.
//
// Addressing. Each test takes a slot s (0–63) by locking a file in /tmp
// (a fixed directory, whatever TMPDIR says, so that every test process
// sees the same locks), so concurrent test processes never share names or
// addresses; host k of slot s is the namespace "ipcf<s>h<k>", reached over
// the interface of the same name, on the subnet 10.231.(4s+k).0/24: the
// test's side is .1, the host .2. Only these addresses exist; nothing is
// routed off the machine. A slot's leftovers from a killed run are deleted
// before use, and everything is deleted when the test ends, failed or not.
//
// Why child processes. A namespace belongs to an OS thread; gnet's event
// loops run on threads of their own, so a service cannot be moved into a
// namespace from inside the test process. Each host's service is the test
// binary itself, run again with `ip netns exec` and the environment
// variable netnsPeerEnv (TestMain hands over to runNetnsPeer). The client
// under test stays in the test process, in the test's namespace.
//
// Requirements: Linux, root, the ip command (iproute2). Without them the
// tests skip, unless the environment variable CI is set: then they fail.

// netnsPeerEnv, when set, makes the test binary run an echo service
// listening on its value and nothing else (see runNetnsPeer).
const netnsPeerEnv = "IPCFRAME_NETNS_PEER"

// netnsPort is the port every host's service listens on: each namespace
// has its own ports, so one fixed port serves all hosts, as in a fleet.
const netnsPort = 7000

// netnsLab is one test's set of hosts.
type netnsLab struct {
	t     testing.TB
	slot  int
	lock  *os.File
	hosts []*netnsHost
}

// netnsHost is one namespace, its link and its service.
type netnsHost struct {
	lab  *netnsLab
	name string // namespace and the test side's interface
	ip   string // the host's address
	peer *netnsPeer
}

// Addr returns the host service's "ip:port".
func (h *netnsHost) Addr() string { return fmt.Sprintf("%s:%d", h.ip, netnsPort) }

// requireNetns skips (or, under CI, fails) the test when namespaces
// cannot be made here.
func requireNetns(t testing.TB) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "no ip command (iproute2)"
	} else if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		why = "no network namespaces"
	}
	if why != "" {
		netnsUnavailable(t, why)
	}
}

// netnsUnavailable skips the test, or fails it under CI, where namespace
// tests must run.
func netnsUnavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("network namespace tests need root and iproute2 in CI: %s", why)
	}
	t.Skipf("network namespaces unavailable (%s); CI runs these tests", why)
}

// newNetnsLab creates n hosts (at most 4), each with its peer service
// started, and deletes them all when the test ends.
func newNetnsLab(t testing.TB, n int) *netnsLab {
	t.Helper()
	requireNetns(t)
	require.LessOrEqual(t, n, 4)
	lab := &netnsLab{t: t, slot: -1}
	t.Cleanup(lab.close)
	for s := range 64 {
		f, err := os.OpenFile(filepath.Join("/tmp", fmt.Sprintf("ipcframe-netns-%d.lock", s)), os.O_CREATE|os.O_RDWR, 0o600)
		require.NoError(t, err)
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			lab.slot, lab.lock = s, f
			break
		}
		_ = f.Close()
	}
	require.GreaterOrEqual(t, lab.slot, 0, "all 64 namespace slots are taken")
	lab.removeAll() // a killed run's leftovers
	for k := range n {
		h := &netnsHost{lab: lab, name: fmt.Sprintf("ipcf%dh%d", lab.slot, k)}
		lab.hosts = append(lab.hosts, h)
		subnet := fmt.Sprintf("10.231.%d", 4*lab.slot+k)
		h.ip = subnet + ".2"
		if out, err := exec.Command("ip", "netns", "add", h.name).CombinedOutput(); err != nil {
			// Root without the capability (an unprivileged container).
			netnsUnavailable(t, fmt.Sprintf("ip netns add: %v: %s", err, out))
		}
		lab.ip("link", "add", h.name, "type", "veth", "peer", "name", "eth0", "netns", h.name)
		lab.ip("addr", "add", subnet+".1/24", "dev", h.name)
		lab.ip("link", "set", h.name, "up")
		lab.ip("-n", h.name, "addr", "add", h.ip+"/24", "dev", "eth0")
		lab.ip("-n", h.name, "link", "set", "eth0", "up")
		lab.ip("-n", h.name, "link", "set", "lo", "up")
	}
	for _, h := range lab.hosts {
		h.peer = startNetnsPeer(t, h)
	}
	return lab
}

// ip runs the ip command and fails the test if it fails.
func (l *netnsLab) ip(args ...string) {
	l.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(l.t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// removeAll deletes every namespace and interface of the lab's slot,
// whether or not they exist.
func (l *netnsLab) removeAll() {
	for k := range 4 {
		name := fmt.Sprintf("ipcf%dh%d", l.slot, k)
		_ = exec.Command("ip", "netns", "del", name).Run()
		_ = exec.Command("ip", "link", "del", name).Run()
	}
}

// close stops the peers, deletes the hosts and frees the slot.
func (l *netnsLab) close() {
	for _, h := range l.hosts {
		if h.peer != nil {
			h.peer.stop()
		}
	}
	if l.slot >= 0 {
		l.removeAll()
		_ = l.lock.Close() // releases the lock
	}
}

// link joins hosts a and b by a veth pair of their own (the interface
// "link0" in each), on the slot's fourth subnet, 10.231.(4s+3).0/24: a is
// .1, b is .2. It returns b's address on it. One link per lab.
func (l *netnsLab) link(a, b *netnsHost) string {
	l.t.Helper()
	require.Less(l.t, len(l.hosts), 4, "the fourth subnet is taken by a host")
	subnet := fmt.Sprintf("10.231.%d", 4*l.slot+3)
	l.ip("-n", a.name, "link", "add", "link0", "type", "veth", "peer", "name", "link0", "netns", b.name)
	l.ip("-n", a.name, "addr", "add", subnet+".1/24", "dev", "link0")
	l.ip("-n", b.name, "addr", "add", subnet+".2/24", "dev", "link0")
	l.ip("-n", a.name, "link", "set", "link0", "up")
	l.ip("-n", b.name, "link", "set", "link0", "up")
	return subnet + ".2"
}

// linkDown takes the host's link down on the test's side: its route goes,
// so new connections fail at once (network unreachable) and established
// ones hear nothing more, without a reset.
func (h *netnsHost) linkDown() { h.lab.ip("link", "set", h.name, "down") }

// blackHole takes the link down inside the host's namespace: the test's
// side keeps its route, and every packet to the host vanishes (no reset,
// no error): connection attempts hang, established connections go
// silent.
func (h *netnsHost) blackHole() { h.lab.ip("-n", h.name, "link", "set", "eth0", "down") }

// netnsPeer is a host's service process, seen from the test: it reports
// the connections it accepts and the requests it answers.
type netnsPeer struct {
	*plSignal
	cmd   *exec.Cmd
	stdin io.WriteCloser
	read  chan struct{} // closed when its output ends

	mu       sync.Mutex
	ready    bool
	accepted int
	served   map[uint32]int // requests answered, by index
	stderr   strings.Builder
}

// startNetnsPeer runs the host's service in its namespace and waits until
// it listens.
func startNetnsPeer(t testing.TB, h *netnsHost) *netnsPeer {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	p := &netnsPeer{plSignal: newPLSignal(), read: make(chan struct{}), served: map[uint32]int{}}
	p.cmd = exec.Command("ip", "netns", "exec", h.name, exe, "-test.run=^$")
	// Every address of the namespace: its own link and any other (link).
	p.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=:%d", netnsPeerEnv, netnsPort))
	p.cmd.Stderr = &lockedWriter{mu: &p.mu, b: &p.stderr}
	p.stdin, err = p.cmd.StdinPipe()
	require.NoError(t, err)
	out, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go p.readOutput(out)
	p.waitFor(t, "the service of "+h.name+" to listen", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		select {
		case <-p.read:
			t.Fatalf("the service of %s exited: %s", h.name, p.stderr.String())
		default:
		}
		return p.ready
	})
	return p
}

// readOutput records the peer's report lines until its output ends.
func (p *netnsPeer) readOutput(r io.Reader) {
	defer close(p.read)
	defer p.notify()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var idx uint32
		line := sc.Text()
		p.mu.Lock()
		switch {
		case line == "READY":
			p.ready = true
		case line == "ACCEPT":
			p.accepted++
		default:
			if _, err := fmt.Sscanf(line, "SERVED %d", &idx); err == nil {
				p.served[idx]++
			}
		}
		p.mu.Unlock()
		p.notify()
	}
}

// counts returns the connections accepted and requests answered so far.
func (p *netnsPeer) counts() (accepted int, served map[uint32]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[uint32]int, len(p.served))
	for k, v := range p.served {
		out[k] = v
	}
	return p.accepted, out
}

// stop ends the peer: its stdin closes, it stops its service and exits;
// it is killed if it has not exited within the deadline.
func (p *netnsPeer) stop() {
	_ = p.stdin.Close()
	done := make(chan error, 1)
	go func() {
		<-p.read
		done <- p.cmd.Wait()
	}()
	select {
	case <-done:
	case <-time.After(deadline):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// lockedWriter appends to b under mu.
type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// runNetnsPeer is the host side (the child process): an echo service on
// addr that reports "READY" once it listens, "ACCEPT" per connection
// and "SERVED <index>" per request answered, one line each on stdout, and
// stops when stdin ends. It returns the exit code.
func runNetnsPeer(addr string) int {
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
		_ = out.Flush()
	}
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(ctx ipc.Context, m *testmsg.Message) {
		_ = ctx.Respond(m)
		report("SERVED %d", m.Idx)
	})
	s, err := ipc.NewService(ipc.Config{
		Protocol:        p,
		Listen:          addr,
		ConnectionStart: func(ipc.ConnInfo) { report("ACCEPT") },
	})
	if err == nil {
		err = s.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "netns peer:", err)
		return 1
	}
	report("READY")
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(os.Stderr, "netns peer: stop:", err)
		return 1
	}
	return 0
}
