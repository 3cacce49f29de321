/* script.c — running a file cell by cell.
 *
 * Cells are marked by lines starting with "-- %%" (jupytext's percent
 * format for Lua), so one .lua file is the script, the replayed lesson and
 * the source of the notebook. Each cell is its own chunk, exactly as in a
 * notebook: globals carry over, `local`s do not. Each chunk is padded with
 * newlines so error messages name the line in the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "lua/lsw.h"
#include "repl.h"

typedef struct cell {
    int first_line;     /* 1-based line of the cell's first source line */
    const char *title;  /* text after "-- %%" (empty for a leading cell) */
    int title_len;
    const char *body;   /* the cell's source, marker line excluded */
    size_t body_len;
} cell;

static const char *skip_blank(const char *s, const char *end) {
    while (s < end && (*s == ' ' || *s == '\t')) s++;
    return s;
}

/* "-- %%" with optional blanks around "--": returns the title start or NULL. */
static const char *marker(const char *s, const char *end) {
    s = skip_blank(s, end);
    if (end - s < 2 || s[0] != '-' || s[1] != '-') return NULL;
    s = skip_blank(s + 2, end);
    if (end - s < 2 || s[0] != '%' || s[1] != '%') return NULL;
    return skip_blank(s + 2, end);
}

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
    return true;
}

static bool push_cell(cell **cells, int *n, int *cap, cell c) {
    if (*n == *cap) {
        int ncap = *cap ? *cap * 2 : 8;
        cell *c2 = realloc(*cells, sizeof **cells * (size_t)ncap);
        if (!c2) return false;
        *cells = c2;
        *cap = ncap;
    }
    (*cells)[(*n)++] = c;
    return true;
}

/* Split src into cells; returns the count, or -1 when out of memory. The
 * text before the first marker is a cell only if it holds something. */
static int split_cells(const char *src, size_t len, cell **out) {
    cell *cells = NULL;
    int n = 0, cap = 0, line = 1;
    const char *p = src, *end = src + len;
    cell cur = {1, "", 0, src, 0};
    if (len >= 2 && src[0] == '#' && src[1] == '!') { /* "#!" line: not Lua */
        while (p < end && *p != '\n') p++;
        cur.body = p;
    }
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *lend = eol ? eol : end, *next = eol ? eol + 1 : end;
        const char *title = marker(p, lend);
        if (title) {
            cur.body_len = (size_t)(p - cur.body);
            if (!push_cell(&cells, &n, &cap, cur)) goto oom;
            while (lend > title && (lend[-1] == '\r' || lend[-1] == ' ')) lend--;
            cur = (cell){line + 1, title, (int)(lend - title), next, 0};
        }
        p = next;
        line++;
    }
    cur.body_len = (size_t)(end - cur.body);
    if (!push_cell(&cells, &n, &cap, cur)) goto oom;
    if (n > 1 && cells[0].title_len == 0 && blank(cells[0].body, cells[0].body_len)) {
        memmove(cells, cells + 1, sizeof *cells * (size_t)(n - 1));
        n--;
    }
    *out = cells;
    return n;
oom:
    free(cells);
    return -1;
}

/* Only blank lines and "--" comments: a prose cell, shown but not run. */
static bool comments_only(const char *s, size_t n) {
    const char *end = s + n;
    while (s < end) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol) eol = end;
        const char *p = skip_blank(s, eol);
        if (p < eol && *p != '\r' && !(eol - p >= 2 && p[0] == '-' && p[1] == '-')) return false;
        s = eol + 1;
    }
    return true;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = path ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        cap *= 2;
        char *b2 = realloc(buf, cap);
        if (!b2) { free(buf); buf = NULL; }
        buf = b2;
    }
    if (path) fclose(f);
    *len = n;
    return buf;
}

/* Wait for Enter before a cell; false if the user asked to quit. */
static bool pause_prompt(int i, int n, bool color) {
    printf(color ? "\033[1m[cell %d/%d] Enter runs it, q quits\033[0m " : "[cell %d/%d] Enter runs it, q quits ", i, n);
    fflush(stdout);
    char answer[64];
    if (!fgets(answer, sizeof answer, stdin)) return true; /* no input: keep going */
    return !(answer[0] == 'q' || answer[0] == 'Q');
}

static void echo_cell(const cell *c, int i, int n, bool color) {
    if (i > 0)
        printf(color ? "\033[1;36m-- %%%% [%d/%d] %.*s\033[0m\n" : "-- %%%% [%d/%d] %.*s\n", i, n, c->title_len,
               c->title);
    /* The source without trailing blank lines. */
    size_t len = c->body_len;
    while (len && (c->body[len - 1] == '\n' || c->body[len - 1] == '\r' || c->body[len - 1] == ' ')) len--;
    const char *s = c->body, *end = c->body + len;
    while (s < end) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol) eol = end;
        printf(color ? "\033[36m  %.*s\033[0m\n" : "  %.*s\n", (int)(eol - s), s);
        s = eol + 1;
    }
    fflush(stdout);
}

int repl_run_file(lua_State *L, const char *path, const repl_script_opts *o) {
    bool from_stdin = !path || !strcmp(path, "-");
    size_t len;
    char *src = read_all(from_stdin ? NULL : path, &len);
    if (!src) {
        fprintf(stderr, "stepwise: cannot read %s\n", from_stdin ? "standard input" : path);
        return 1;
    }
    cell *cells = NULL;
    int n = split_cells(src, len, &cells);
    if (n < 0) {
        free(src);
        fprintf(stderr, "stepwise: out of memory reading %s\n", path);
        return 1;
    }
    const char *shown = from_stdin ? "stdin" : path;
    char *chunkname = malloc(strlen(shown) + 2);
    sprintf(chunkname, "@%s", shown);
    int ncode = 0;
    for (int i = 0; i < n; i++) ncode += !comments_only(cells[i].body, cells[i].body_len);
    int rc = 0;
    for (int i = 0, k = 0; i < n && rc == 0; i++) {
        const cell *c = &cells[i];
        if (comments_only(c->body, c->body_len)) { /* prose: shown in a replay, never run */
            if (o->replay) echo_cell(c, 0, ncode, o->color);
            continue;
        }
        k++;
        if (o->pause && !pause_prompt(k, ncode, o->color)) break;
        if (o->replay) echo_cell(c, k, ncode, o->color);
        /* Pad so line numbers in errors match the file. */
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (int k = 1; k < c->first_line; k++) luaL_addchar(&b, '\n');
        luaL_addlstring(&b, c->body, c->body_len);
        luaL_pushresult(&b);
        size_t clen;
        const char *code = lua_tolstring(L, -1, &clen);
        lsw_cell t;
        lsw_cell_begin(&t);
        lsw_ranks_begin(code, clen, chunkname); /* the other ranks run it too */
        int st = luaL_loadbuffer(L, code, clen, chunkname);
        lua_remove(L, -2);
        if (st == LUA_OK) st = repl_docall(L, 0, 0);
        fflush(stdout);
        if (lsw_ranks_end(st == LUA_OK)) rc = 1;
        if (st != LUA_OK) {
            repl_report(L, lua_tostring(L, -1), st == LUA_ERRRUN);
            lua_pop(L, 1);
            rc = 1;
        } else if (o->replay || lsw_profile_enabled()) {
            bool was = lsw_profile_enabled();
            lsw_profile_set(true);
            repl_print_cost(&t, o->color);
            lsw_profile_set(was);
        }
    }
    free(chunkname);
    free(cells);
    free(src);
    return rc;
}
