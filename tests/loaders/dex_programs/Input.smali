# reads a count and that many numbers with Scanner, then the rest of the line and the next lines
.class public LInput;
.super Ljava/lang/Object;

.method public static main([Ljava/lang/String;)V
    .registers 9
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    new-instance v1, Ljava/util/Scanner;
    sget-object v2, Ljava/lang/System;->in:Ljava/io/InputStream;
    invoke-direct {v1, v2}, Ljava/util/Scanner;-><init>(Ljava/io/InputStream;)V
    invoke-virtual {v1}, Ljava/util/Scanner;->nextInt()I
    move-result v2
    const-wide/16 v3, 0
    :loop
    if-lez v2, :done
    invoke-virtual {v1}, Ljava/util/Scanner;->nextLong()J
    move-result-wide v5
    add-long/2addr v3, v5
    add-int/lit8 v2, v2, -1
    goto :loop
    :done
    invoke-virtual {v0, v3, v4}, Ljava/io/PrintStream;->println(J)V
    invoke-virtual {v1}, Ljava/util/Scanner;->nextDouble()D
    move-result-wide v3
    invoke-virtual {v0, v3, v4}, Ljava/io/PrintStream;->println(D)V
    invoke-virtual {v1}, Ljava/util/Scanner;->nextLine()Ljava/lang/String;
    move-result-object v2
    invoke-virtual {v0, v2}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    invoke-virtual {v1}, Ljava/util/Scanner;->hasNextInt()Z
    move-result v2
    invoke-virtual {v0, v2}, Ljava/io/PrintStream;->println(Z)V
    :lines
    invoke-virtual {v1}, Ljava/util/Scanner;->hasNextLine()Z
    move-result v2
    if-eqz v2, :end
    invoke-virtual {v1}, Ljava/util/Scanner;->nextLine()Ljava/lang/String;
    move-result-object v2
    invoke-virtual {v2}, Ljava/lang/String;->toUpperCase()Ljava/lang/String;
    move-result-object v2
    invoke-virtual {v0, v2}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    goto :lines
    :end
    :s
    invoke-virtual {v1}, Ljava/util/Scanner;->next()Ljava/lang/String;
    :e
    .catch Ljava/util/NoSuchElementException; {:s .. :e} :none
    return-void
    :none
    move-exception v2
    invoke-virtual {v0, v2}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    return-void
.end method
