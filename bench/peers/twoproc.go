package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Servers are started either in this process or, with -twoproc, in a child
// process running this same binary as `-serve NAME -addr ADDR`. The child
// talks to the parent over its standard streams:
//
//	child stdout, first line:  "addr HOST:PORT"
//	parent stdin line "count": child answers one line with the bytes its
//	                            stream servers have read so far
//	parent closes stdin:       child stops the server and exits 0

// childStopTimeout bounds how long the parent waits for a child to exit after
// closing its stdin before killing it.
const childStopTimeout = 10 * time.Second

// runningServer is a running server, local or in a child process.
type runningServer struct {
	addr string
	stop func()
	// count returns the bytes read so far by stream servers on that side.
	count func() (int64, error)
}

// serveFuncs maps every -serve name to its in-process start function.
func serveFuncs() map[string]func(string) (string, func(), error) {
	m := map[string]func(string) (string, func(), error){
		"pingpong": servePingPong,
		"stream":   serveStream,
		stdTLSName: serveStdTLS,
	}
	for n, s := range systems {
		m[n] = s.Serve
	}
	return m
}

// startServer starts the server called name, in a child process when
// twoProc is set.
func startServer(name string, twoProc bool) (*runningServer, error) {
	if twoProc {
		return startChild(name)
	}
	fn, ok := serveFuncs()[name]
	if !ok {
		return nil, fmt.Errorf("no server %q", name)
	}
	addr, stop, err := fn("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &runningServer{addr: addr, stop: stop, count: func() (int64, error) { return streamBytes.Load(), nil }}, nil
}

func startChild(name string) (*runningServer, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	cmd := exec.Command(exe, "-serve", name, "-addr", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	out := bufio.NewReader(outPipe)
	exited := make(chan error, 1)
	kill := func() {
		in.Close()
		go func() { exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(childStopTimeout):
			cmd.Process.Kill()
			<-exited
		}
	}
	line, err := out.ReadString('\n')
	if err != nil {
		kill()
		return nil, fmt.Errorf("child %s: %w", name, err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr ")
	if !ok {
		kill()
		return nil, fmt.Errorf("child %s: unexpected first line %q", name, line)
	}
	count := func() (int64, error) {
		if _, err := io.WriteString(in, "count\n"); err != nil {
			return 0, err
		}
		l, err := out.ReadString('\n')
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(strings.TrimSpace(l), 10, 64)
	}
	pid := cmd.Process.Pid
	childCPU = func() (time.Duration, bool) { return procCPU(pid) }
	stop := func() {
		childCPU = nil
		kill()
	}
	return &runningServer{addr: addr, stop: stop, count: count}, nil
}

// serveChild is the child side: it runs until its stdin is closed.
func serveChild(name, addr string) error {
	fn, ok := serveFuncs()[name]
	if !ok {
		return fmt.Errorf("no server %q", name)
	}
	listen, stop, err := fn(addr)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Printf("addr %s\n", listen)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "count":
			fmt.Println(streamBytes.Load())
		default:
			return errors.New("child: unknown command " + strconv.Quote(sc.Text()))
		}
	}
	return sc.Err()
}
