package serde_test

import (
	"bytes"
	"fmt"

	"github.com/ipcframe/ipcframe/serde"
)

// provenBudget is a ValueBudget with ipc's rule: it lends at most the size
// of the largest value delivered in full, over all values under way.
type provenBudget struct{ proven, lent, loans int }

// Lend lends n bytes if they fit what the delivered values proved.
func (b *provenBudget) Lend(n int) bool {
	if n > b.proven-b.lent {
		return false
	}
	b.lent += n
	b.loans++
	return true
}

// End returns a loan; a value delivered in full proves its size.
func (b *provenBudget) End(n, got int, lent bool) {
	if lent {
		b.lent -= n
	}
	if got == n {
		b.proven = max(b.proven, n)
	}
}

// ExampleDecoder_SetValueBudget decodes two 1 MiB values with one decoder:
// the first grows as its bytes arrive (the budget has seen nothing), the
// second gets its whole array when its size is decoded, since a value as
// large was delivered before.
func ExampleDecoder_SetValueBudget() {
	payload := bytes.Repeat([]byte("budget"), 175_000) // about 1 MiB
	wire := encodeBlob(payload)
	budget := &provenBudget{}
	dec := serde.NewDecoder(nil, serde.Limits{})
	dec.SetValueBudget(budget)
	for i := range 2 {
		got, err := decodeInPackets(dec, wire)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("value %d: intact %v, loans so far %d\n",
			i+1, bytes.Equal(got.Data, payload), budget.loans)
	}
	// Output:
	// value 1: intact true, loans so far 0
	// value 2: intact true, loans so far 1
}
