#ifndef ALLOT_CHIREDIS_SHIM_H
#define ALLOT_CHIREDIS_SHIM_H
#include "../CEvent/shim.h"
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

/* The adapter's attach function is static in the header; a static inline
   wrapper gives Swift one stable symbol to call. */
static inline int allot_redis_libevent_attach(redisAsyncContext *ac, struct event_base *base) {
    return redisLibeventAttach(ac, base);
}
#endif
