.class public LColls;
.super Ljava/lang/Object;

.method static say(Ljava/lang/Object;)V
    .registers 2
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    invoke-virtual {v0, p0}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    return-void
.end method

# counts words into the map: map.put(w, map.getOrDefault(w, 0) + 1) for each word
.method static count(Ljava/util/Map;[Ljava/lang/String;)V
    .registers 8
    const/4 v0, 0
    :loop
    array-length v1, p1
    if-ge v0, v1, :done
    aget-object v1, p1, v0
    const/4 v2, 0
    invoke-static {v2}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v2
    invoke-interface {p0, v1, v2}, Ljava/util/Map;->getOrDefault(Ljava/lang/Object;Ljava/lang/Object;)Ljava/lang/Object;
    move-result-object v2
    check-cast v2, Ljava/lang/Integer;
    invoke-virtual {v2}, Ljava/lang/Integer;->intValue()I
    move-result v2
    add-int/lit8 v2, v2, 1
    invoke-static {v2}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v2
    invoke-interface {p0, v1, v2}, Ljava/util/Map;->put(Ljava/lang/Object;Ljava/lang/Object;)Ljava/lang/Object;
    add-int/lit8 v0, v0, 1
    goto :loop
    :done
    invoke-static {p0}, LColls;->say(Ljava/lang/Object;)V
    return-void
.end method

.method public static main([Ljava/lang/String;)V
    .registers 12
    const-string v0, "the quick brown fox jumps over the lazy dog and then some more words make the map grow past sixteen entries for a resize of its table"
    const-string v1, " "
    invoke-virtual {v0, v1}, Ljava/lang/String;->split(Ljava/lang/String;)[Ljava/lang/String;
    move-result-object v10
    new-instance v1, Ljava/util/HashMap;
    invoke-direct {v1}, Ljava/util/HashMap;-><init>()V
    invoke-static {v1, v10}, LColls;->count(Ljava/util/Map;[Ljava/lang/String;)V
    new-instance v2, Ljava/util/LinkedHashMap;
    invoke-direct {v2}, Ljava/util/LinkedHashMap;-><init>()V
    invoke-static {v2, v10}, LColls;->count(Ljava/util/Map;[Ljava/lang/String;)V
    new-instance v3, Ljava/util/TreeMap;
    invoke-direct {v3}, Ljava/util/TreeMap;-><init>()V
    invoke-static {v3, v10}, LColls;->count(Ljava/util/Map;[Ljava/lang/String;)V
    const-string v4, "the"
    invoke-interface {v1, v4}, Ljava/util/Map;->get(Ljava/lang/Object;)Ljava/lang/Object;
    move-result-object v5
    invoke-static {v5}, LColls;->say(Ljava/lang/Object;)V
    invoke-interface {v1, v4}, Ljava/util/Map;->remove(Ljava/lang/Object;)Ljava/lang/Object;
    invoke-interface {v1, v4}, Ljava/util/Map;->containsKey(Ljava/lang/Object;)Z
    move-result v5
    invoke-static {v5}, Ljava/lang/Boolean;->valueOf(Z)Ljava/lang/Boolean;
    move-result-object v5
    invoke-static {v5}, LColls;->say(Ljava/lang/Object;)V
    # entrySet iteration of the LinkedHashMap: key:value pairs with count > 1
    invoke-interface {v2}, Ljava/util/Map;->entrySet()Ljava/util/Set;
    move-result-object v5
    invoke-interface {v5}, Ljava/util/Set;->iterator()Ljava/util/Iterator;
    move-result-object v5
    :entries
    invoke-interface {v5}, Ljava/util/Iterator;->hasNext()Z
    move-result v6
    if-eqz v6, :entries_done
    invoke-interface {v5}, Ljava/util/Iterator;->next()Ljava/lang/Object;
    move-result-object v6
    check-cast v6, Ljava/util/Map$Entry;
    invoke-interface {v6}, Ljava/util/Map$Entry;->getValue()Ljava/lang/Object;
    move-result-object v7
    check-cast v7, Ljava/lang/Integer;
    invoke-virtual {v7}, Ljava/lang/Integer;->intValue()I
    move-result v7
    const/4 v8, 1
    if-le v7, v8, :entries
    invoke-interface {v6}, Ljava/util/Map$Entry;->getKey()Ljava/lang/Object;
    move-result-object v7
    invoke-static {v7}, LColls;->say(Ljava/lang/Object;)V
    goto :entries
    :entries_done
    # HashSet of Integers, ArrayList sorted two ways
    new-instance v4, Ljava/util/HashSet;
    invoke-direct {v4}, Ljava/util/HashSet;-><init>()V
    new-instance v5, Ljava/util/ArrayList;
    invoke-direct {v5}, Ljava/util/ArrayList;-><init>()V
    const/4 v6, 0
    :nums
    const/16 v7, 12
    if-ge v6, v7, :nums_done
    mul-int v7, v6, v6
    mul-int/lit16 v7, v7, 37
    rem-int/lit16 v7, v7, 101
    add-int/lit8 v7, v7, -50
    invoke-static {v7}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v7
    invoke-interface {v4, v7}, Ljava/util/Set;->add(Ljava/lang/Object;)Z
    invoke-interface {v5, v7}, Ljava/util/List;->add(Ljava/lang/Object;)Z
    add-int/lit8 v6, v6, 1
    goto :nums
    :nums_done
    invoke-static {v4}, LColls;->say(Ljava/lang/Object;)V
    invoke-static {v5}, Ljava/util/Collections;->sort(Ljava/util/List;)V
    invoke-static {v5}, LColls;->say(Ljava/lang/Object;)V
    new-instance v6, Ljava/util/ArrayList;
    invoke-static {v10}, Ljava/util/Arrays;->asList([Ljava/lang/Object;)Ljava/util/List;
    move-result-object v7
    invoke-direct {v6, v7}, Ljava/util/ArrayList;-><init>(Ljava/util/Collection;)V
    new-instance v7, LByLength;
    invoke-direct {v7}, LByLength;-><init>()V
    invoke-static {v6, v7}, Ljava/util/Collections;->sort(Ljava/util/List;Ljava/util/Comparator;)V
    invoke-static {v6}, LColls;->say(Ljava/lang/Object;)V
    invoke-interface {v6}, Ljava/util/List;->size()I
    move-result v7
    const/4 v8, 3
    invoke-interface {v6, v8}, Ljava/util/List;->remove(I)Ljava/lang/Object;
    move-result-object v8
    invoke-static {v8}, LColls;->say(Ljava/lang/Object;)V
    # CopyOnWriteArrayList: adding while iterating is allowed, the iterator sees the snapshot
    new-instance v7, Ljava/util/concurrent/CopyOnWriteArrayList;
    invoke-direct {v7}, Ljava/util/concurrent/CopyOnWriteArrayList;-><init>()V
    const-string v8, "x"
    invoke-interface {v7, v8}, Ljava/util/List;->add(Ljava/lang/Object;)Z
    const-string v8, "y"
    invoke-interface {v7, v8}, Ljava/util/List;->add(Ljava/lang/Object;)Z
    invoke-interface {v7}, Ljava/util/List;->iterator()Ljava/util/Iterator;
    move-result-object v8
    :cow
    invoke-interface {v8}, Ljava/util/Iterator;->hasNext()Z
    move-result v9
    if-eqz v9, :cow_done
    invoke-interface {v8}, Ljava/util/Iterator;->next()Ljava/lang/Object;
    move-result-object v9
    check-cast v9, Ljava/lang/String;
    invoke-virtual {v9, v9}, Ljava/lang/String;->concat(Ljava/lang/String;)Ljava/lang/String;
    move-result-object v9
    invoke-interface {v7, v9}, Ljava/util/List;->add(Ljava/lang/Object;)Z
    goto :cow
    :cow_done
    invoke-static {v7}, LColls;->say(Ljava/lang/Object;)V
    # the same on an ArrayList: ConcurrentModificationException
    :cme_s
    invoke-interface {v6}, Ljava/util/List;->iterator()Ljava/util/Iterator;
    move-result-object v8
    :al
    invoke-interface {v8}, Ljava/util/Iterator;->hasNext()Z
    move-result v9
    if-eqz v9, :cme_e
    invoke-interface {v8}, Ljava/util/Iterator;->next()Ljava/lang/Object;
    move-result-object v9
    invoke-interface {v6, v9}, Ljava/util/List;->add(Ljava/lang/Object;)Z
    goto :al
    :cme_e
    .catch Ljava/util/ConcurrentModificationException; {:cme_s .. :cme_e} :cme
    :after_cme
    # Arrays
    const/4 v8, 6
    new-array v8, v8, [I
    fill-array-data v8, :data
    invoke-static {v8}, Ljava/util/Arrays;->sort([I)V
    invoke-static {v8}, Ljava/util/Arrays;->toString([I)Ljava/lang/String;
    move-result-object v9
    invoke-static {v9}, LColls;->say(Ljava/lang/Object;)V
    # a list of program objects prints their toString
    new-instance v8, Ljava/util/ArrayList;
    invoke-direct {v8}, Ljava/util/ArrayList;-><init>()V
    invoke-interface {v8, v7}, Ljava/util/List;->add(Ljava/lang/Object;)Z
    new-instance v9, LByLength;
    invoke-direct {v9}, LByLength;-><init>()V
    invoke-interface {v8, v9}, Ljava/util/List;->add(Ljava/lang/Object;)Z
    invoke-static {v8}, LColls;->say(Ljava/lang/Object;)V
    return-void
    :cme
    move-exception v9
    invoke-static {v9}, LColls;->say(Ljava/lang/Object;)V
    goto :after_cme
    :data
    .array-data 4
        5 -3 99 0 7 -3
    .end array-data
.end method
