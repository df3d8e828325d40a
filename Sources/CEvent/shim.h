#ifndef ALLOT_CEVENT_SHIM_H
#define ALLOT_CEVENT_SHIM_H
/* libevent's event-config.h defines _GNU_SOURCE, which changes glibc's
   fd_set (fds_bits vs __fds_bits). Including the system headers first, with
   the same feature macros Swift's Glibc module uses, keeps one definition. */
#include <sys/types.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netdb.h>
#include <stdint.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>
#endif
