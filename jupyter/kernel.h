/* kernel.h — the Jupyter kernel's three layers and what they share.
 *
 *   wire.c      ZeroMQ sockets, framing, HMAC signing, heartbeat thread
 *   protocol.c  dispatch by msg_type, busy/idle, parent headers, replies
 *   glue.c      the Lua state: running cells, completion, inspection
 *   capture.c   fds 1 and 2 into stream messages (a reader thread)
 *   install.c   `stepwise install-kernel` (the kernelspec directory)
 *
 * Only wire.c touches ZeroMQ; only glue.c touches Lua. Sockets are owned by
 * one thread each (shell and stdin: main; control: the control thread;
 * heartbeat: its own), except iopub, which every thread publishes on under
 * the send lock in wire.c.
 */
#ifndef JUPYTER_KERNEL_H
#define JUPYTER_KERNEL_H

#include <jansson.h>
#include <lua.h>
#include <stdbool.h>
#include <stdio.h>

/* Messages over this many bytes in total are dropped unread. */
#define KW_MAX_MSG (64u << 20)

typedef enum { KW_SHELL, KW_CONTROL, KW_STDIN, KW_IOPUB, KW_NSOCK } kw_sock;

typedef struct kw_frame {
    char  *data;
    size_t len;
} kw_frame;

/* One decoded message. Identities are kept to route the reply. */
typedef struct kw_msg {
    kw_frame *ids;
    size_t    nids;
    json_t   *header, *parent, *metadata, *content;
    const char *msg_type; /* points into header */
} kw_msg;

/* Where the kernel logs: the process's original stderr (fd 2 itself is
 * redirected into cells' output once the kernel runs). */
extern FILE *kw_log;

/* Read the connection file, bind every socket, start the heartbeat. */
int  kw_open(const char *connection_file);
void kw_close(void);
/* Wait up to timeout_ms for a message on sock. 1: *m filled; 0: nothing
 * (timeout, or a bad message that was logged and dropped); -1: socket error. */
int  kw_recv(kw_sock s, kw_msg *m, int timeout_ms);
void kw_msg_free(kw_msg *m);
/* Send msg_type with content (stolen) in reply to parent (may be NULL) on
 * sock; iopub messages carry the msg_type as topic. Thread-safe. */
int  kw_send(kw_sock s, const kw_msg *parent, const char *msg_type, json_t *content);
/* Same, but with a parent header only (for output sent from other threads). */
int  kw_send_parent(kw_sock s, json_t *parent_header, const char *msg_type, json_t *content);
const char *kw_session(void);
void kw_new_uuid(char out[37]);

/* ---- glue ---------------------------------------------------------------- */

/* Result of running one cell. */
typedef struct kg_result {
    bool    ok;
    json_t *data;      /* execute_result bundle (mime -> text) or NULL */
    char   *ename, *evalue;
    json_t *traceback; /* array of strings */
    json_t *cost;      /* the cost line (a string) when profiling */
} kg_result;

int  kg_init(lua_State *L);      /* capture fds, install hooks */
/* capture.c: fds 1/2 -> stream messages with the current parent. */
int  kg_capture_start(void);
void kg_set_parent(json_t *parent_header); /* where output goes (borrowed copy) */
void kg_flush(void);             /* every byte written so far is sent */
/* Send on iopub with the current parent, after the output before it. */
void kg_publish(const char *msg_type, json_t *content);
void kg_execute(lua_State *L, const char *code, kg_result *r);
void kg_result_free(kg_result *r);
/* "complete" / "incomplete" / "invalid" */
const char *kg_is_complete(lua_State *L, const char *code);
/* Candidates for the word ending at cursor; sets *start to its offset. */
json_t *kg_complete(lua_State *L, const char *code, size_t cursor, size_t *start);
/* A mime bundle describing the name at cursor, or NULL. */
json_t *kg_inspect(lua_State *L, const char *code, size_t cursor);
/* Raise the interrupt (from the control thread). */
void kg_interrupt(void);

/* ---- protocol ------------------------------------------------------------ */
int  kp_run(lua_State *L);     /* the main loop; returns the exit code */
/* Ask the front end for a line of input (input_request on stdin) for the
 * running cell. A malloc'd string, or NULL with *err set (stdin not
 * allowed by the client, interrupted, socket error). Main thread only. */
char *kp_input(const char *prompt, bool password, const char **err);

int  jupyter_kernel_main(int argc, char **argv);
int  jupyter_install_main(int argc, char **argv, const char *argv0);

#endif
