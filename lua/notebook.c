/* notebook.c — `stepwise --to-ipynb FILE.lua [-o OUT.ipynb]`: the command
 * line side of sw.to_ipynb (lua/notebook.lua), here so that repl/main.c
 * needs only one line to offer it. */
#include <stdio.h>
#include <string.h>

#include "lsw.h"

int lsw_to_ipynb_main(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!in && argv[i][0] != '-') in = argv[i];
        else {
            fprintf(stderr, "stepwise: --to-ipynb: unexpected '%s' (usage: stepwise --to-ipynb FILE.lua [-o OUT.ipynb])\n",
                    argv[i]);
            return 2;
        }
    }
    if (!in) {
        fprintf(stderr, "stepwise: --to-ipynb needs a .lua file (usage: stepwise --to-ipynb FILE.lua [-o OUT.ipynb])\n");
        return 2;
    }
    lua_State *L = lsw_newstate();
    if (!L) return 1;
    lua_getglobal(L, "sw");
    lua_getfield(L, -1, "to_ipynb");
    lua_pushstring(L, in);
    if (out) lua_pushstring(L, out);
    else lua_pushnil(L);
    int rc = 0;
    if (lua_pcall(L, 2, 1, 0)) {
        fprintf(stderr, "stepwise: %s\n", lua_tostring(L, -1));
        rc = 1;
    } else {
        printf("wrote %s\n", lua_tostring(L, -1));
    }
    lua_close(L);
    return rc;
}
