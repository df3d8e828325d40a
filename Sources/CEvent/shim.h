#ifndef ALLOT_CEVENT_SHIM_H
#define ALLOT_CEVENT_SHIM_H
#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/thread.h>
#include <event2/util.h>
#endif
