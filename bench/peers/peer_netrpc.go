package main

import (
	"context"
	"net"
	"net/rpc"
)

// netrpcSystem runs the standard library's net/rpc (gob encoding) with []byte
// arguments on one connection. net/rpc has no context support: ctx is
// ignored.
type netrpcSystem struct{}

func init() { register(netrpcSystem{}) }

func (netrpcSystem) Name() string { return "netrpc" }

// NetRPCBench is the net/rpc service; net/rpc requires exported names.
type NetRPCBench struct{}

// Echo replies with the request's bytes.
func (NetRPCBench) Echo(args []byte, reply *[]byte) error {
	*reply = args
	return nil
}

// Sink accepts the request's bytes and replies with nothing.
func (NetRPCBench) Sink(args []byte, reply *[]byte) error { return nil }

func (netrpcSystem) Serve(addr string) (string, func(), error) {
	srv := rpc.NewServer()
	if err := srv.RegisterName("Bench", NetRPCBench{}); err != nil {
		return "", nil, err
	}
	return serveConns(addr, func(c net.Conn) { srv.ServeConn(c) })
}

func (netrpcSystem) Dial(addr string) (Client, error) {
	c, err := rpc.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return netrpcClient{c}, nil
}

type netrpcClient struct{ c *rpc.Client }

func (n netrpcClient) Call(_ context.Context, payload []byte) ([]byte, error) {
	var reply []byte
	err := n.c.Call("Bench.Echo", payload, &reply)
	return reply, err
}

func (n netrpcClient) Sink(_ context.Context, payload []byte) error {
	var reply []byte
	return n.c.Call("Bench.Sink", payload, &reply)
}

func (n netrpcClient) Close() error { return n.c.Close() }
