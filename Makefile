# Lienthong — make targets. `make run` starts a dev hub; `make test` runs every test.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 30s
PKGS        := ./...

.PHONY: run test test-short test-chaos build lint bench fuzz clean

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

bench: ## the Go benchmarks
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 $(PKGS)

fuzz: ## run each fuzz target for FUZZTIME
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

clean:
	rm -rf bin var
