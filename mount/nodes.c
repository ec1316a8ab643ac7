/* nodes.c — the table of dynamic inodes (see the essay in pactownfs.h). */
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "pactownfs.h"

static int node_cmp(const void *a, const void *b)
{
    const struct pt_node *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->name, y->name);
}

struct pt_node *pt_node_get(struct pt_fs *fs, enum node_kind kind, const char *name)
{
    size_t len = strlen(name);
    struct pt_node *fresh = malloc(sizeof *fresh + len + 1);
    if (!fresh)
        return NULL;
    fresh->nlookup = 0;
    fresh->kind = kind;
    memcpy(fresh->name, name, len + 1);
    pthread_mutex_lock(&fs->nodes_mu);
    struct pt_node **slot = tsearch(fresh, &fs->nodes, node_cmp);
    struct pt_node *node = slot ? *slot : NULL;
    if (node)
        node->nlookup++;
    pthread_mutex_unlock(&fs->nodes_mu);
    if (node != fresh)
        free(fresh);
    return node;
}

fuse_ino_t pt_node_find(struct pt_fs *fs, enum node_kind kind, const char *name)
{
    size_t len = strlen(name);
    struct pt_node *probe = malloc(sizeof *probe + len + 1);
    if (!probe)
        return 0;
    probe->kind = kind;
    memcpy(probe->name, name, len + 1);
    pthread_mutex_lock(&fs->nodes_mu);
    struct pt_node **slot = tfind(probe, &fs->nodes, node_cmp);
    fuse_ino_t ino = slot ? (fuse_ino_t)(uintptr_t)*slot : 0;
    pthread_mutex_unlock(&fs->nodes_mu);
    free(probe);
    return ino;
}

void pt_node_forget(struct pt_fs *fs, struct pt_node *node, uint64_t n)
{
    pthread_mutex_lock(&fs->nodes_mu);
    if (n >= node->nlookup) {
        tdelete(node, &fs->nodes, node_cmp);
        free(node);
    } else {
        node->nlookup -= n;
    }
    pthread_mutex_unlock(&fs->nodes_mu);
}

void pt_node_drop_all(struct pt_fs *fs)
{
    pthread_mutex_lock(&fs->nodes_mu);
    tdestroy(fs->nodes, free);
    fs->nodes = NULL;
    pthread_mutex_unlock(&fs->nodes_mu);
}
