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
	scripts/load.sh
clean:
	rm -rf .build var load-report
