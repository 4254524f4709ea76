package ipc

import "github.com/ipcframe/ipcframe/reactor"

// ReactorStats returns the counters of s's reactor (busy polls, yields,
// direct reads); for the benchmarks of package ipc_test.
func ReactorStats(s *Service) reactor.Stats { return s.r.Stats() }
