# Allocates 1M-element arrays, each holding the previous one, until the heap is full. Without
# arguments the OutOfMemoryError ends the program; with one, it is caught, the chain dropped and
# an array allocated again (the heap was released).
.class public Lorg/cerebro/demo/Hog;
.super Ljava/lang/Object;

.method public static main([Ljava/lang/String;)V
    .locals 5
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    const/4 v1, 0
    const/high16 v2, 0x100000
    const/4 v4, 0
    :try_start
    new-array v3, v2, [Ljava/lang/Object;
    aput-object v1, v3, v4
    move-object v1, v3
    goto :try_start
    :try_end
    .catch Ljava/lang/OutOfMemoryError; {:try_start .. :try_end} :oom
    :oom
    move-exception v3
    array-length v4, p0
    if-eqz v4, :rethrow
    const-string v4, "caught OutOfMemoryError"
    invoke-virtual {v0, v4}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    const/4 v1, 0
    new-array v1, v2, [Ljava/lang/Object;
    const-string v4, "allocated again"
    invoke-virtual {v0, v4}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    return-void
    :rethrow
    throw v3
.end method
