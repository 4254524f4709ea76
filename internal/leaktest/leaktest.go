// Package leaktest holds what the test binaries' goroutine-leak checks
// (goleak) share: the goroutines that are not leaks.
package leaktest

import "go.uber.org/goleak"

// Ignore returns goleak options that pass over gnet's package-level ants
// worker pool (gnet registers sockets through it): it starts at init and
// its idle workers linger, whatever the tests do. Use it in TestMain
// (goleak.VerifyTestMain(m, leaktest.Ignore()...)) and in goleak.VerifyNone.
func Ignore() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*goWorker).run.func1"),
	}
}
