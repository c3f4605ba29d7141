package classroom

// PendingFor reports whether joins or leaves of session still wait for the database, for
// tests that must know a refused write was seen before the database recovers.
func (s *Service) PendingFor(session string) bool { return s.col.pendingFor(session) }
