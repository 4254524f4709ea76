package main

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
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
type grpcSystem struct{}

func init() { register(grpcSystem{}) }

func (grpcSystem) Name() string { return "grpc" }

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

func (grpcSystem) Serve(addr string) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	s := grpc.NewServer(
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

func (grpcSystem) Dial(addr string) (Client, error) {
	cc, err := grpc.NewClient(fmt.Sprintf(grpcDialTargetFmt, addr),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
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
		return nil, err
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
