# Lienthong — make targets. `make run` starts a dev hub; `make test` runs every test.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 30s
PKGS        := ./...

.PHONY: run test test-short test-chaos build lint bench bench-xmlsec fuzz clean

run: ## start the hub with embedded defaults (data in ./var/dev)
	@$(GO) build -o bin/hubd ./cmd/hubd
	exec bin/hubd dev $(RUNFLAGS)

test: ## every test, against real PostgreSQL and the embedded broker
	$(GO) test -count=1 -timeout 25m $(PKGS)

test-chaos: ## the chaos test: separate hubd, broker and PostgreSQL processes killed and restarted (a few minutes)
	LT_CHAOS=1 $(GO) test -count=1 -timeout 15m -run '^TestChaos$$' -v ./cmd/internal/hub/

test-short: ## unit tests only
	$(GO) test -count=1 -short $(PKGS)

build: ## binaries into ./bin
	$(GO) build -o bin/ ./cmd/...

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

bench: ## the Go benchmarks, then the load benchmark: 20 KB documents for 60 s at 1,000/s and as fast as answered, one 200 MB document
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 $(PKGS)
	@$(GO) build -o bin/ ./cmd/hubd ./cmd/hubbench
	bin/hubbench --hubd bin/hubd --size 20KB --duration 60s --rate 1000 --concurrency 64 --out var/bench/results.json
	bin/hubbench --hubd bin/hubd --size 20KB --duration 60s --out var/bench/results-closed-loop.json
	bin/hubbench --hubd bin/hubd --size 200MB --docs 1 --concurrency 1 --recipients 1 --duration 1s --out var/bench/results-200MB.json
	@$(MAKE) -s bench-xmlsec

bench-xmlsec: ## verify the same signed edXML with libxmlsec1 (cgo) and the hub; prints the ratio
	@if pkg-config --exists xmlsec1-openssl 2>/dev/null; then \
	  $(GO) test -v -tags libxmlsec -count=1 -run '^TestSideBySide$$' ./envelope/dsig/internal/libxmlsec/ | grep -E '^verify|FAIL|^ok'; \
	else echo "bench-xmlsec: cần / needs libxmlsec1-dev and pkg-config (apt-get install libxmlsec1-dev pkg-config)"; fi

fuzz: ## run each fuzz target for FUZZTIME
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

clean:
	rm -rf bin var
