// Package pglocal runs a private PostgreSQL cluster from the system's server
// binaries. It is where the ledger lives in `hubd dev` and in tests: the
// accept transaction that makes a document durable before the edge answers
// 202 commits into a cluster this package started. It does no SQL beyond
// creating and dropping databases; the ledger owns the schema.
//
// A cluster lives in one directory (Config.Dir):
//
//	data/          PGDATA (initdb output)
//	run/           the unix socket (when the path is short enough)
//	password       the superuser's generated password, mode 0600
//	port           the TCP port chosen the first time, reused afterwards
//	postgres.log   the server's stderr
//
// The server listens on 127.0.0.1 only, with scram-sha-256 authentication for
// the superuser "lienthong". It runs in its own session (setsid), so it
// outlives a process that dies without calling Stop; the next Start on the
// same directory finds it through postmaster.pid and reuses it. A
// postmaster.pid left by a dead server is removed once the pid is known not to
// be a live postmaster of this directory.
//
// PostgreSQL refuses to run as root. When the caller is root, Start chowns
// Config.Dir to the "postgres" user, runs initdb, postgres and pg_ctl with
// that user's uid and gid, and adds o+x (search, not read) to every ancestor
// of Config.Dir that lacks it, so that the postgres user can reach the
// directory. Nothing else is chmodded.
package pglocal
