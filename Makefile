.PHONY: run test bench microbench load lottery holds clean
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
lottery:
	scripts/load.sh lottery --registrations 1000000 --places 100000 --slots 100 --window-seconds 100
holds:
	scripts/load.sh holds --citizens 100000 --places 10000 --slots 100 --arrival-seconds 20 --hold-seconds 5
clean:
	rm -rf .build var load-report
