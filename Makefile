.PHONY: run test bench microbench load clean
run:
	scripts/run.sh
test:
	scripts/test.sh
bench:
	scripts/bench.sh
microbench:
	scripts/microbench.sh
load:
	swift build -c release --product allot --product allot-load
	.build/release/allot-load surge --citizens 1000000 --places 100000 --slots 200 --arrival-seconds 30
clean:
	rm -rf .build var load-report
