package serde_test

import (
	"fmt"

	"github.com/ipcframe/ipcframe/serde"
)

// Blob is a message with a large value.
type Blob struct {
	ID   uint32
	Data []byte
}

// Serde lists the fields in wire order.
func (b *Blob) Serde(v *serde.Visitor) {
	v.Uint32(&b.ID)
	v.Bytes(&b.Data)
}

// ExampleEncoder_Borrow sends a value's bytes from its own memory: Encode
// writes the small fields and the length prefix, Borrow hands over the
// contents without copying them (a transport would pass them to writev).
func ExampleEncoder_Borrow() {
	msg := &Blob{ID: 7, Data: []byte("a large value")}
	enc := serde.NewEncoder(nil, serde.Limits{})
	enc.Reset(msg)
	buf := make([]byte, 4)
	for {
		if enc.Borrowable() >= 4 {
			b := enc.Borrow(8) // the value's own memory, at most 8 bytes
			fmt.Printf("borrowed %q, same memory: %v\n", b, &b[0] == &msg.Data[len(msg.Data)-enc.Borrowable()-len(b)])
			continue
		}
		n, done, err := enc.Encode(buf)
		if err != nil {
			panic(err)
		}
		if n > 0 {
			fmt.Printf("encoded % x\n", buf[:n])
		}
		if done {
			fmt.Println("done")
			break
		}
	}
	// Output:
	// encoded 01 07 09 0d
	// borrowed "a large ", same memory: true
	// borrowed "value", same memory: true
	// done
}
