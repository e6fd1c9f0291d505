# A class in the default package whose name starts with "L" (--main Loop is a name, not a descriptor).
.class public LLoop;
.super Ljava/lang/Object;

.method public static main([Ljava/lang/String;)V
    .locals 3
    const/4 v0, 0
    const/4 v1, 1
    :loop
    add-int/2addr v0, v1
    add-int/lit8 v1, v1, 1
    const/16 v2, 10
    if-le v1, v2, :loop
    sget-object v2, Ljava/lang/System;->out:Ljava/io/PrintStream;
    invoke-virtual {v2, v0}, Ljava/io/PrintStream;->println(I)V
    return-void
.end method
