package envelope

// The fixtures of testdata/edxml and testdata/hub are generated.
//go:generate go run ./internal/genfixtures -edxml ../testdata/edxml -hub ../testdata/hub
