// Package pgtest gives tests of the ledger and of every stage that touches it
// a real PostgreSQL: one throwaway cluster per test binary (started by
// pglocal in Fast mode on first use), and a fresh, empty database per test,
// dropped when the test ends. Documents accepted in one test are therefore
// never seen by another.
//
// Wire it in the package's TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and call NewDatabase(t) in each test that needs a database. When the
// environment variable LT_TEST_DATABASE_URL names a server (for example a CI
// service container), databases are created and dropped there instead and no
// cluster is started; the URL's user must be allowed to CREATE DATABASE.
package pgtest
