package testmsg

import (
	"fmt"
	"math/rand/v2"
)

// JSONLike returns n bytes of JSON-like records (ids, names, e-mails,
// booleans, scores, tags) from a fixed seed: the kind of payload
// compression is meant for.
func JSONLike(n int) []byte {
	rng := rand.New(rand.NewPCG(7, 11))
	tags := []string{"alpha", "beta", "gamma", "delta", "prod", "staging", "eu-west", "us-east"}
	b := make([]byte, 0, n+256)
	b = append(b, '[')
	for i := 0; len(b) < n; i++ {
		u := rng.IntN(100000)
		b = fmt.Appendf(b, `{"id":%d,"user":"user-%d","email":"user-%d@example.com","active":%t,"score":%.3f,"tags":["%s","%s"],"created":"2026-11-%02dT%02d:%02d:%02dZ"},`,
			i, u, u, rng.IntN(2) == 0, rng.Float64()*100, tags[rng.IntN(len(tags))], tags[rng.IntN(len(tags))],
			1+rng.IntN(30), rng.IntN(24), rng.IntN(60), rng.IntN(60))
	}
	return b[:n]
}

// Random returns n bytes from a fixed seed that do not compress.
func Random(n int) []byte {
	rng := rand.New(rand.NewPCG(3, 5))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}
