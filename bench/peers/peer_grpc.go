package main

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/peer"
)

// grpc-go settings, following "each peer at its documented best": shared
// write buffers, flow-control windows raised above the 64 KiB default, and
// message limits raised so the 64 MiB bulk workload fits.
const (
	grpcMaxMsg        = 256 << 20
	grpcStreamWindow  = 1 << 20
	grpcConnWindow    = 16 << 20
	grpcServiceName   = "bench.Bench"
	grpcEchoMethod    = "/" + grpcServiceName + "/Echo"
	grpcSinkMethod    = "/" + grpcServiceName + "/Sink"
	grpcRawCodecName  = "raw"
	grpcDialTargetFmt = "passthrough:///%s"
)

// grpcSystem runs google.golang.org/grpc with a codec that passes []byte
// through unchanged (no protobuf) and a hand-written ServiceDesc with two
// unary methods. A ClientConn to one address uses one HTTP/2 connection.
// With tls set ("grpc-tls") both sides use credentials.NewTLS with the
// shared certificates (tlscert.go).
type grpcSystem struct{ tls bool }

func init() {
	register(grpcSystem{})
	register(grpcSystem{tls: true})
}

func (g grpcSystem) Name() string {
	if g.tls {
		return "grpc-tls"
	}
	return "grpc"
}

func (g grpcSystem) optIn() bool { return g.tls }

// rawCodec is an encoding.CodecV2 for *[]byte and []byte values.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	var b []byte
	switch t := v.(type) {
	case []byte:
		b = t
	case *[]byte:
		b = *t
	default:
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	if len(b) == 0 {
		return nil, nil
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	// Materialize copies: data is freed when Unmarshal returns.
	*p = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return grpcRawCodecName }

// grpcBenchServer is the (empty) handler type of the hand-written ServiceDesc.
type grpcBenchServer interface{}

var grpcDesc = grpc.ServiceDesc{
	ServiceName: grpcServiceName,
	HandlerType: (*grpcBenchServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Echo", Handler: grpcEcho},
		{MethodName: "Sink", Handler: grpcSink},
	},
	Streams: []grpc.StreamDesc{},
}

func grpcEcho(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	var in []byte
	if err := dec(&in); err != nil {
		return nil, err
	}
	return &in, nil
}

func grpcSink(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	var in []byte
	if err := dec(&in); err != nil {
		return nil, err
	}
	var out []byte
	return &out, nil
}

func (g grpcSystem) Serve(addr string) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	creds := insecure.NewCredentials()
	if g.tls {
		creds = credentials.NewTLS(tlsServerConfig())
	}
	s := grpc.NewServer(
		grpc.Creds(creds),
		grpc.ForceServerCodecV2(rawCodec{}),
		grpc.MaxRecvMsgSize(grpcMaxMsg),
		grpc.MaxSendMsgSize(grpcMaxMsg),
		grpc.SharedWriteBuffer(true),
		grpc.InitialWindowSize(grpcStreamWindow),
		grpc.InitialConnWindowSize(grpcConnWindow),
	)
	s.RegisterService(&grpcDesc, struct{}{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ln)
	}()
	stop := func() {
		s.Stop()
		<-done
	}
	return ln.Addr().String(), stop, nil
}

func (g grpcSystem) Dial(addr string) (Client, error) {
	creds := insecure.NewCredentials()
	if g.tls {
		creds = credentials.NewTLS(tlsClientConfig(nil))
	}
	return grpcDial(addr, creds)
}

// grpcDial opens a ClientConn to addr with the benchmark's options and
// starts connecting.
func grpcDial(addr string, creds credentials.TransportCredentials) (grpcClient, error) {
	cc, err := grpc.NewClient(fmt.Sprintf(grpcDialTargetFmt, addr),
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.ForceCodecV2(rawCodec{}),
			grpc.MaxCallRecvMsgSize(grpcMaxMsg),
			grpc.MaxCallSendMsgSize(grpcMaxMsg),
		),
		grpc.WithSharedWriteBuffer(true),
		grpc.WithInitialWindowSize(grpcStreamWindow),
		grpc.WithInitialConnWindowSize(grpcConnWindow),
	)
	if err != nil {
		return grpcClient{}, err
	}
	cc.Connect()
	return grpcClient{cc}, nil
}

type grpcClient struct{ cc *grpc.ClientConn }

func (g grpcClient) Call(ctx context.Context, payload []byte) ([]byte, error) {
	var reply []byte
	err := g.cc.Invoke(ctx, grpcEchoMethod, &payload, &reply)
	return reply, err
}

func (g grpcClient) Sink(ctx context.Context, payload []byte) error {
	var reply []byte
	return g.cc.Invoke(ctx, grpcSinkMethod, &payload, &reply)
}

func (g grpcClient) Close() error { return g.cc.Close() }

// Connector implements connector (grpc-tls only): each connect is a new
// ClientConn (one HTTP/2 connection over TLS), one Echo call, Close; the
// call's peer information says whether the handshake resumed.
func (g grpcSystem) Connector(addr string, resume bool) (func(context.Context, []byte) (bool, error), func(), error) {
	if !g.tls {
		return nil, nil, fmt.Errorf("grpc: %w", errUnsupported)
	}
	creds := credentials.NewTLS(tlsClientConfig(sessionCache(resume)))
	connect := func(ctx context.Context, payload []byte) (bool, error) {
		c, err := grpcDial(addr, creds)
		if err != nil {
			return false, err
		}
		defer c.Close()
		var p peer.Peer
		var reply []byte
		if err := c.cc.Invoke(ctx, grpcEchoMethod, &payload, &reply, grpc.Peer(&p)); err != nil {
			return false, err
		}
		info, ok := p.AuthInfo.(credentials.TLSInfo)
		if !ok {
			return false, errNoResumeInfo
		}
		return info.State.DidResume, nil
	}
	return connect, func() {}, nil
}
