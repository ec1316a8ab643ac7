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

static struct pt_node *node_alloc(enum node_kind kind, const char *name)
{
    size_t len = strlen(name);
    struct pt_node *n = malloc(sizeof *n + len + 1);
    if (!n)
        return NULL;
    n->nlookup = 0;
    n->kind = kind;
    n->transient = false;
    memcpy(n->name, name, len + 1);
    return n;
}

static int ptr_cmp(const void *a, const void *b)
{
    return a < b ? -1 : a > b;
}

struct pt_node *pt_node_new_transient(struct pt_fs *fs, enum node_kind kind, const char *name)
{
    struct pt_node *n = node_alloc(kind, name);
    if (!n)
        return NULL;
    n->transient = true;
    n->nlookup = 1;
    /* kept in a tree of their own, so that unmount frees the ones the kernel never forgot */
    pthread_mutex_lock(&fs->nodes_mu);
    void *slot = tsearch(n, &fs->transients, ptr_cmp);
    pthread_mutex_unlock(&fs->nodes_mu);
    if (!slot) {
        free(n);
        return NULL;
    }
    return n;
}

struct pt_node *pt_node_get(struct pt_fs *fs, enum node_kind kind, const char *name)
{
    struct pt_node *fresh = node_alloc(kind, name);
    if (!fresh)
        return NULL;
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
    struct pt_node *probe = node_alloc(kind, name);
    if (!probe)
        return 0;
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
        if (node->transient)
            tdelete(node, &fs->transients, ptr_cmp);
        else
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
    tdestroy(fs->transients, free);
    fs->nodes = fs->transients = NULL;
    pthread_mutex_unlock(&fs->nodes_mu);
}
