package serde_test

import (
	"fmt"

	"github.com/ipcframe/ipcframe/serde"
)

// Greeting is a message: a plain struct whose pointer has a Serde method.
type Greeting struct {
	From  string
	Count uint32
	Tags  []string
	Reply *Greeting // optional
}

// SerdeVersion makes Greeting versioned: the version is written first.
func (g *Greeting) SerdeVersion() uint32 { return 1 }

// Serde lists the fields in wire order; it serves encoding and decoding.
func (g *Greeting) Serde(v *serde.Visitor) {
	v.String(&g.From)
	v.Uint32(&g.Count)
	serde.Slice(v, &g.Tags, (*serde.Visitor).String)
	serde.Optional(v, &g.Reply, func(v *serde.Visitor, r *Greeting) { v.Struct(r) })
}

func Example() {
	msg := &Greeting{From: "ann", Count: 3, Tags: []string{"a", "bc"}, Reply: &Greeting{From: "bo"}}

	// Encode through an 8-byte buffer, as a transport with small packets
	// would.
	enc := serde.NewEncoder(nil, serde.Limits{})
	enc.Reset(msg)
	var wire []byte
	buf := make([]byte, 8)
	for {
		n, done, err := enc.Encode(buf)
		if err != nil {
			panic(err)
		}
		wire = append(wire, buf[:n]...)
		if done {
			break
		}
	}
	fmt.Printf("% x\n", wire)

	// Decode from 5-byte pieces.
	dec := serde.NewDecoder(nil, serde.Limits{})
	var got Greeting
	dec.Reset(&got)
	for off := 0; ; {
		n, done, err := dec.Decode(wire[off:min(off+5, len(wire))])
		if err != nil {
			panic(err)
		}
		off += n
		if done {
			break
		}
	}
	fmt.Println(got.From, got.Count, got.Tags, got.Reply.From, got.Reply.Reply == nil)
	// Output:
	// 09 01 09 03 61 6e 6e 01 03 09 02 09 01 61 09 02 62 63 01 09 01 09 02 62 6f 00 00 00
	// ann 3 [a bc] bo true
}
