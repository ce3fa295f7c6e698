-- DBeaver tool queries: catalog SQL of DBeaver's PostgreSQL plugin (navigator loaders, object
-- caches, properties, admin sessions/locks).  DBeaver is a desktop Java app and was not run here:
-- extracted from source dbeaver/dbeaver@2428359b748778a5a345432906ab3da69289c20c (2024-10-24,
-- DBeaver 24.2.4), plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/
-- model/{PostgreDataSource,PostgreDatabase,PostgreSchema,PostgreTable,PostgreTableReal,
-- PostgreRole,PostgreDataTypeCache,PostgreDependency,...}.java and lock/PostgreLockManager.java,
-- session/PostgreSessionManager.java.  Java string concatenations were assembled into the
-- concrete variant DBeaver sends to a PostgreSQL 15 server with default settings (each chunk's
-- `-- source:` / `-- variant:` lines say which branch); JDBC `?` placeholders were renumbered to
-- $1..$n as pgjdbc sends them on the wire; where DBeaver concatenates an OID or name into the
-- text, the capture database's value is used.  Not deduplicated against pgjdbc.sql.
-- 74 statements, separated by lines containing only `-- next`.

-- source: PostgreDataSource.prepareReadDatabaseListStatement
-- variant: templates and unavailable databases hidden, connection database name set, no filters
SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE 1 = 1 AND datallowconn AND NOT datistemplate OR db.datname =$1
ORDER BY db.datname
-- next
-- source: PostgreDataSource.loadAvailableDatabases
SELECT current_database()
-- next
-- source: PostgreDataSource.initialize (server version)
SELECT version()
-- next
-- source: PostgreDataSource (template databases)
SELECT db.datname FROM pg_catalog.pg_database db WHERE datistemplate
-- next
-- source: PostgreDataSource (database sizes)
-- variant: one database, so `WHERE db.oid=?` is appended
SELECT db.datname,pg_database_size(db.oid) FROM pg_catalog.pg_database db WHERE db.oid=$1
-- next
-- source: PostgreDataSource (settings)
select * from pg_catalog.pg_settings where name=$1
-- next
-- source: PostgreDataSource (settings, all)
select * from pg_catalog.pg_settings
-- next
-- source: PostgreExecutionContext.refreshDefaults
SELECT current_schema(),session_user
-- next
-- source: PostgreExecutionContext.refreshDefaults
SHOW search_path
-- next
-- source: PostgreDatabase (database by name)
SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname=$1
-- next
-- source: PostgreDatabase (description)
select description from pg_shdescription join pg_database on objoid = pg_database.oid where datname = $1
-- next
-- source: PostgreDatabase.readDataTypes
-- variant: PostgreSQL >= 10, "read all data types" off
SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name, d.description
FROM pg_catalog.pg_type t
LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem 
LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid=t.typrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid
WHERE t.typname IS NOT NULL
AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C')
-- next
-- source: PostgreDatabase.RoleCache
-- variant: server supports comments on roles
SELECT a.oid,a.*,pd.description FROM pg_catalog.pg_roles a 
left join pg_catalog.pg_shdescription pd on a.oid = pd.objoid
ORDER BY a.rolname
-- next
-- source: PostgreDatabase.AccessMethodCache
SELECT am.oid,am.* FROM pg_catalog.pg_am am 
ORDER BY am.oid
-- next
-- source: PostgreDatabase.EncodingCache
SELECT c.contoencoding as encid,pg_catalog.pg_encoding_to_char(c.contoencoding) as encname
FROM pg_catalog.pg_conversion c
GROUP BY c.contoencoding
ORDER BY 2
-- next
-- source: PostgreDatabase.CollationCache
SELECT c.oid,c.* FROM pg_catalog.pg_collation c 
ORDER BY c.oid
-- next
-- source: PostgreDatabase.LanguageCache
SELECT l.oid,l.* FROM pg_catalog.pg_language l 
ORDER BY l.oid
-- next
-- source: PostgreDatabase.ForeignDataWrapperCache
SELECT l.oid,l.*,p.pronamespace as handler_schema_id 
FROM pg_catalog.pg_foreign_data_wrapper l
LEFT OUTER JOIN pg_catalog.pg_proc p ON p.oid=l.fdwhandler 
ORDER BY l.fdwname
-- next
-- source: PostgreDatabase.ForeignServerCache
SELECT l.oid,l.* FROM pg_catalog.pg_foreign_server l
ORDER BY l.srvname
-- next
-- source: PostgreDatabase.TablespaceCache
-- variant: PostgreSQL >= 9.2 (pg_tablespace_location)
SELECT t.oid,t.*,pg_tablespace_location(t.oid) loc
FROM pg_catalog.pg_tablespace t 
ORDER BY t.oid
-- next
-- source: PostgreDatabase.AvailableExtensionCache
SELECT name,default_version,installed_version,comment FROM pg_catalog.pg_available_extensions ORDER BY name
-- next
-- source: PostgreDatabase.EventTriggersCache
-- variant: list all
SELECT pet.*, d.description FROM pg_catalog.pg_event_trigger pet
LEFT OUTER JOIN pg_catalog.pg_description d ON pet."oid" = d.objoid
-- next
-- source: PostgreDatabase.ExtensionCache
SELECT 
 e.oid,
 cfg.tbls,
  n.nspname as schema_name,
 e.* 
FROM 
 pg_catalog.pg_extension e 
 join pg_namespace n on n.oid =e.extnamespace
 left join  (
         select
            ARRAY_AGG(ns.nspname || '.' ||  cls.relname) tbls, oid_ext
          from
            (
            select
                unnest(e1.extconfig) oid , e1.oid oid_ext
            from
                pg_catalog.pg_extension e1 ) c 
                join    pg_class cls on cls.oid = c.oid 
                join pg_namespace ns on ns.oid = cls.relnamespace
            group by oid_ext        
         ) cfg on cfg.oid_ext = e.oid
ORDER BY e.oid
-- next
-- source: PostgreDatabase.SchemaCache
-- variant: list all schemas, no navigator filter
SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass
 ORDER BY nspname
-- next
-- source: PostgreDatabase.SchemaCache
-- variant: lookup of one schema by name (JDBCUtils.appendFilterClause with a single mask)
SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass
 WHERE nspname=$1 ORDER BY nspname
-- next
-- source: PostgreDatabase.EnumCache
SELECT * FROM pg_catalog.pg_enum
-- next
-- source: PostgreDataTypeCache (type by oid)
SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name FROM pg_catalog.pg_type t
LEFT OUTER JOIN pg_class c ON c.oid=t.typrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid
WHERE t.oid=$1
-- next
-- source: PostgreDataTypeCache.resolveDataType (type by name)
SELECT t.oid,t.*,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name FROM pg_catalog.pg_type t
LEFT OUTER JOIN pg_class c ON c.oid=t.typrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid
WHERE t.typname=$1
-- next
-- source: PostgreDataType (enum labels)
SELECT e.enumlabel 
FROM pg_catalog.pg_enum e
WHERE e.enumtypid=$1
ORDER BY e.enumsortorder
-- next
-- source: PostgreDataType (composite type attributes)
SELECT c.relname,row_number() OVER (ORDER BY a.attnum) as attnum,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.oid=$1
ORDER BY a.attnum
-- next
-- source: PostgreGenericTypeCache
-- variant: server has pg_type.typcategory
SELECT t.oid as typid,tn.nspname typnsname,t.* 
FROM pg_catalog.pg_type t , pg_catalog.pg_namespace tn
WHERE tn.oid=t.typnamespace 
AND t.typtype<>'c' AND t.typcategory not in ('A','P')
ORDER by t.oid
-- next
-- source: PostgreSchema (table inheritance)
SELECT i.inhrelid relid, pc.relnamespace parent_ns, pc.oid parent_oid, i.inhseqno
FROM pg_catalog.pg_inherits i, pg_class rc, pg_class pc
WHERE rc.oid=i.inhrelid AND rc.relnamespace=$1 AND pc.oid=i.inhparent
-- next
-- source: PostgreSchema.collectObjectStatistics
select c.oid,pg_catalog.pg_total_relation_size(c.oid) as total_rel_size,pg_catalog.pg_relation_size(c.oid) as rel_size
FROM pg_class c
WHERE c.relnamespace=$1
-- next
-- source: PostgreSchema.readSchemaInfo
SELECT s.oid as schema_id
from pg_catalog.pg_namespace s
WHERE s.nspname =$1
-- next
-- source: PostgreSchema.readDefaultPrivileges
SELECT * FROM pg_default_acl WHERE defaclnamespace = $1
-- next
-- source: PostgreSchema.ExtensionCache
SELECT 
 e.oid,
 cfg.tbls,
 e.* 
FROM 
 pg_catalog.pg_extension e 
 join pg_namespace n on n.oid =e.extnamespace
 left join  (
         select
            ARRAY_AGG(ns.nspname || '.' ||  cls.relname) tbls, oid_ext
          from
            (
            select
                unnest(e1.extconfig) oid , e1.oid oid_ext
            from
                pg_catalog.pg_extension e1 ) c 
                join    pg_class cls on cls.oid = c.oid 
                join pg_namespace ns on ns.oid = cls.relnamespace
            group by oid_ext        
         ) cfg on cfg.oid_ext = e.oid

WHERE e.extnamespace=$1
ORDER BY e.oid
-- next
-- source: PostgreSchema.AggregateCache
SELECT p.oid AS proc_oid,p.proname AS proc_name,a.*
FROM pg_catalog.pg_aggregate a,pg_catalog.pg_proc p
WHERE p.oid=a.aggfnoid AND p.pronamespace=$1
ORDER BY p.proname
-- next
-- source: PostgreSchema.TableCache.prepareLookupStatement
-- variant: PostgreSQL >= 10, all relations of a schema
SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  pg_catalog.pg_get_partkeydef(c.oid) as partition_key 
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass
WHERE c.relnamespace=$1 AND c.relkind not in ('i','I','c')
-- next
-- source: PostgreSchema.TableCache.prepareLookupStatement
-- variant: PostgreSQL >= 10, one relation by name
SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  pg_catalog.pg_get_partkeydef(c.oid) as partition_key 
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass
WHERE c.relnamespace=$1 AND c.relkind not in ('i','I','c') AND relname=$2
-- next
-- source: PostgreSchema.TableCache.prepareChildrenStatement
-- variant: columns of one table (sequences supported)
SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description,dep.objid
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid
WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid=$1
-- next
-- source: PostgreSchema.TableCache.prepareChildrenStatement
-- variant: columns of every table in a schema
SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description,dep.objid
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid
WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.relnamespace=$1
-- next
-- source: PostgreSchema.ConstraintCache
-- variant: every constraint of a schema
SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, case when c.contype='c' then "substring"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy
FROM pg_catalog.pg_constraint c
INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid
LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass
WHERE t.relnamespace=$1
ORDER BY c.oid
-- next
-- source: PostgreSchema.ConstraintCache
-- variant: constraints of one table
SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, case when c.contype='c' then "substring"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy
FROM pg_catalog.pg_constraint c
INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid
LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass
WHERE c.conrelid=$1
ORDER BY c.oid
-- next
-- source: PostgreSchema.IndexCache
-- variant: indexes of one table
SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace,tc.relname as tabrelname,dsc.description,pg_catalog.pg_get_expr(i.indpred, i.indrelid) as pred_expr,pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr,pg_catalog.pg_relation_size(i.indexrelid) as index_rel_size,pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans
FROM pg_catalog.pg_index i
INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid
INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid
LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid
WHERE  i.indrelid=$1 ORDER BY c.relname
-- next
-- source: PostgreSchema.IndexCache
-- variant: every index of a schema
SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace,tc.relname as tabrelname,dsc.description,pg_catalog.pg_get_expr(i.indpred, i.indrelid) as pred_expr,pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr,pg_catalog.pg_relation_size(i.indexrelid) as index_rel_size,pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans
FROM pg_catalog.pg_index i
INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid
INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid
LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid
WHERE  c.relnamespace=$1 ORDER BY c.relname
-- next
-- source: PostgreSchema.IndexCache (expression column)
select pg_catalog.pg_get_indexdef($1, $2, true)
-- next
-- source: PostgreSchema.ProceduresCache
-- variant: every function of a schema
SELECT p.oid as poid,p.*,pg_catalog.pg_get_expr(p.proargdefaults, 0) as arg_defaults,d.description
FROM pg_catalog.pg_proc p
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=p.oid and d.classoid='pg_proc'::regclass  AND d.objsubid = 0
WHERE p.pronamespace=$1
ORDER BY p.proname
-- next
-- source: PostgreSchema.ProceduresCache
-- variant: one function by oid
SELECT p.oid as poid,p.*,pg_catalog.pg_get_expr(p.proargdefaults, 0) as arg_defaults,d.description
FROM pg_catalog.pg_proc p
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=p.oid and d.classoid='pg_proc'::regclass  AND d.objsubid = 0
WHERE p.pronamespace=$1 AND p.oid=$2
ORDER BY p.proname
-- next
-- source: PostgreNamespace (object by name)
-- variant: server has pg_class.reltype
SELECT oid,relkind,reltype FROM pg_catalog.pg_class WHERE relnamespace=$1 AND relname=$2
UNION ALL
SELECT oid,'c',oid FROM pg_catalog.pg_type WHERE typnamespace=$3 AND typname=$4
-- next
-- source: PostgreTableReal.readTableStatistics
select pg_catalog.pg_total_relation_size($1) as total_rel_size,pg_catalog.pg_relation_size($2) as rel_size
-- next
-- source: PostgreTableReal.TriggerCache
-- variant: all triggers of a table, PostgreSQL >= 9.0
SELECT x.oid,x.*,p.pronamespace as func_schema_id,d.description
FROM pg_catalog.pg_trigger x
LEFT OUTER JOIN pg_catalog.pg_proc p ON p.oid=x.tgfoid 
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=x.oid AND d.objsubid=0 
WHERE x.tgrelid = $1 AND NOT x.tgisinternal
-- next
-- source: PostgreTableReal.RuleCache
-- variant: the table oid is concatenated into the text (16412 = shop.orders here)
SELECT r.oid,r.*, pg_get_ruledef(r.oid) AS definition
FROM pg_rewrite r
WHERE r.ev_class=16412 AND r.rulename <> '_RETURN'::name
-- next
-- source: PostgreTable (referencing schemas)
SELECT DISTINCT connamespace FROM pg_catalog.pg_constraint WHERE confrelid=$1
-- next
-- source: PostgreTable.initSuperTables
SELECT i.*,c.relnamespace FROM pg_catalog.pg_inherits i,pg_catalog.pg_class c WHERE i.inhrelid=$1 AND c.oid=i.inhparent ORDER BY i.inhseqno
-- next
-- source: PostgreTable (partition range)
select pg_get_expr(c.relpartbound, c.oid, true) as partition_range from "pg_catalog".pg_class c where relname = $1 and relnamespace = $2;
-- next
-- source: PostgreTable.getSubInheritance
SELECT i.*,c.relnamespace FROM pg_catalog.pg_inherits i,pg_catalog.pg_class c WHERE i.inhparent=$1 AND c.oid=i.inhrelid
-- next
-- source: PostgreTable.PolicyCache
select * from pg_catalog.pg_policies where schemaname=$1 and tablename=$2
-- next
-- source: PostgreTableForeign
SELECT * FROM pg_catalog.pg_foreign_table WHERE ftrelid=$1
-- next
-- source: PostgreViewBase.readDefinition
-- variant: the view oid is concatenated into the text (16465 = shop.order_totals here)
SELECT pg_get_viewdef(16465, true)
-- next
-- source: PostgreSequence (PostgreSQL >= 10)
SELECT * from pg_catalog.pg_sequences WHERE schemaname=$1 AND sequencename=$2
-- next
-- source: PostgreSequence (sequence state)
-- variant: the sequence's qualified name is concatenated into the text
SELECT * from shop.invoice_no
-- next
-- source: PostgreRole (members)
-- variant: members of the role
SELECT * FROM pg_catalog.pg_auth_members WHERE roleid=$1
-- next
-- source: PostgreRole (configuration)
-- variant: Java text block
select s.setconfig, pd.datname from pg_catalog.pg_db_role_setting s
left join pg_catalog.pg_database pd on s.setdatabase = pd.oid
where s.setrole = $1
-- next
-- source: PostgreRole (table privileges)
SELECT * FROM information_schema.table_privileges WHERE table_catalog=$1 AND grantee=$2
-- next
-- source: PostgreRole (routine privileges)
SELECT * FROM information_schema.routine_privileges WHERE specific_catalog=$1 AND grantee=$2
-- next
-- source: PostgreRole (other objects' privileges)
-- variant: PostgreSQL >= 9.0, DISTINCT supported
SELECT * FROM (
	SELECT DISTINCT relnamespace,
	relacl,
	relname,
	relkind,
(aclexplode(relacl)).grantee as granteeI
FROM
	pg_class
WHERE
	relacl IS NOT NULL
	AND relnamespace IN (
SELECT oid
FROM pg_namespace
WHERE nspname NOT LIKE 'pg_%' AND nspname != 'information_schema')
UNION ALL
SELECT DISTINCT
	n.oid AS relnamespace,
	nspacl AS relacl,
	n.nspname AS relname,
	cast('C' as "char") AS relkind,
(aclexplode(nspacl)).grantee as granteeI
FROM
	pg_catalog.pg_namespace n
WHERE
	n.nspacl IS NOT NULL 
	) AS tr
WHERE tr.granteeI=$1 AND tr.relkind IN('S', 'm', 'C')
-- next
-- source: PostgreRole (default privileges)
-- variant: Java text block
SELECT DISTINCT g.* FROM (
SELECT *,
(aclexplode(defaclacl)).grantee as grantee
FROM pg_default_acl a WHERE a.defaclnamespace <> 0) as g
where g.grantee = $1
-- next
-- source: PostgreDependency.readDependencies
-- variant: dependents (queryObjId=objid, condObjId=refobjid)
SELECT DISTINCT dep.deptype, dep.classid, dep.objid, cl.relkind, attr.attname,pg_get_expr(ad.adbin, ad.adrelid) adefval,
    CASE WHEN cl.relkind IS NOT NULL THEN cl.relkind::text || COALESCE(dep.objsubid::text, '')::text
        WHEN tg.oid IS NOT NULL THEN 'T'::text
        WHEN ty.oid IS NOT NULL THEN 'y'::text
        WHEN ns.oid IS NOT NULL THEN 'n'::text
        WHEN pr.oid IS NOT NULL THEN 'p'::text
        WHEN la.oid IS NOT NULL THEN 'l'::text
        WHEN rw.oid IS NOT NULL THEN 'R'::text
        WHEN co.oid IS NOT NULL THEN 'C'::text || contype::text
        WHEN ad.oid IS NOT NULL THEN 'A'::text
        ELSE ''
    END AS type,
    COALESCE(coc.relname, clrw.relname, tgr.relname) AS ownertable,
    CASE WHEN cl.relname IS NOT NULL AND att.attname IS NOT NULL THEN cl.relname || '.' || att.attname
    ELSE COALESCE(cl.relname, co.conname, pr.proname, tg.tgname, ty.typname, la.lanname, rw.rulename, ns.nspname)
    END AS refname,
    COALESCE(nsc.nspname, nso.nspname, nsp.nspname, nst.nspname, nsrw.nspname, tgrn.nspname) AS nspname
FROM pg_depend dep
LEFT JOIN pg_class cl ON dep.objid=cl.oid
LEFT JOIN pg_attribute att ON dep.objid=att.attrelid AND dep.objsubid=att.attnum
LEFT JOIN pg_namespace nsc ON cl.relnamespace=nsc.oid
LEFT JOIN pg_proc pr ON dep.objid=pr.oid
LEFT JOIN pg_namespace nsp ON pr.pronamespace=nsp.oid
LEFT JOIN pg_trigger tg ON dep.objid=tg.oid
LEFT JOIN pg_class tgr ON tg.tgrelid=tgr.oid
LEFT JOIN pg_namespace tgrn ON tgr.relnamespace=tgrn.oid
LEFT JOIN pg_type ty ON dep.objid=ty.oid
LEFT JOIN pg_namespace nst ON ty.typnamespace=nst.oid
LEFT JOIN pg_constraint co ON dep.objid=co.oid
LEFT JOIN pg_class coc ON co.conrelid=coc.oid
LEFT JOIN pg_namespace nso ON co.connamespace=nso.oid
LEFT JOIN pg_rewrite rw ON dep.objid=rw.oid
LEFT JOIN pg_class clrw ON clrw.oid=rw.ev_class
LEFT JOIN pg_namespace nsrw ON clrw.relnamespace=nsrw.oid
LEFT JOIN pg_language la ON dep.objid=la.oid
LEFT JOIN pg_namespace ns ON dep.objid=ns.oid
LEFT JOIN pg_attrdef ad ON ad.oid=dep.objid
LEFT JOIN pg_attribute attr ON attr.attrelid=ad.adrelid and attr.attnum=ad.adnum
WHERE dep.refobjid=$1
ORDER BY type
-- next
-- source: PostgreAccessMethod.OperatorClassCache
SELECT oc.oid,oc.* FROM pg_catalog.pg_opclass oc 
ORDER BY oc.oid
-- next
-- source: PostgreAccessMethod.OperatorFamilyCache
SELECT of.oid,of.* FROM pg_catalog.pg_opfamily of 
ORDER BY of.oid
-- next
-- source: PostgreSessionManager.generateSessionReadQuery
SELECT sa.* FROM pg_catalog.pg_stat_activity sa
-- next
-- source: PostgreLockManager.LOCK_QUERY
with locks as ( select  pid,locktype, mode,granted,transactionid tid,relation,page,tuple from pg_locks ), conflict as ( select *  from (values ('AccessShareLock','AccessExclusiveLock',1), ('RowShareLock','ExclusiveLock',1), ('RowShareLock','AccessExclusiveLock',2),        ('RowExclusiveLock','ShareLock', 1), ('RowExclusiveLock','ShareRowExclusiveLock',2),  ('RowExclusiveLock','ExclusiveLock',3), ('RowExclusiveLock','AccessExclusiveLock',4), ('ShareUpdateExclusiveLock','ShareUpdateExclusiveLock',1), ('ShareUpdateExclusiveLock','ShareLock',2),  ('ShareUpdateExclusiveLock','ShareRowExclusiveLock',3), ('ShareUpdateExclusiveLock','ExclusiveLock', 4), ('ShareUpdateExclusiveLock','AccessExclusiveLock',5), ('ShareLock','RowExclusiveLock',1),  ('ShareLock','ShareUpdateExclusiveLock',2),  ('ShareLock','ShareRowExclusiveLock',3),  ('ShareLock','ExclusiveLock',4),	   ('ShareLock','AccessExclusiveLock',5), ('ShareRowExclusiveLock','RowExclusiveLock', 1),  ('ShareRowExclusiveLock','ShareUpdateExclusiveLock',    2),  ('ShareRowExclusiveLock','ShareLock',    3),  ('ShareRowExclusiveLock','ShareRowExclusiveLock',4),  ('ShareRowExclusiveLock','ExclusiveLock',5),  ('ShareRowExclusiveLock','AccessExclusiveLock', 6), ('ExclusiveLock','RowShareLock',1), ('ExclusiveLock','RowExclusiveLock',2), ('ExclusiveLock','ShareUpdateExclusiveLock',3),  ('ExclusiveLock','ShareLock',4),  ('ExclusiveLock','ShareRowExclusiveLock',5),   ('ExclusiveLock','ExclusiveLock',6),   ('ExclusiveLock','AccessExclusiveLock',7), ('AccessExclusiveLock','AccessShareLock',1), ('AccessExclusiveLock','RowShareLock',2), ('AccessExclusiveLock','RowExclusiveLock',3), ('AccessExclusiveLock','ShareUpdateExclusiveLock',4),   ('AccessExclusiveLock','ShareLock',5), ('AccessExclusiveLock','ShareRowExclusiveLock',6), ('AccessExclusiveLock','ExclusiveLock',7),  ('AccessExclusiveLock','AccessExclusiveLock',8) ) as t (mode1,mode2,prt)     )	  ,real_locks as (select 	  la.pid as blocked_pid, blocked_activity.usename  AS blocked_user, la.blocked     AS blocking_pid, blocking_activity.usename AS blocking_user, blocked_activity.query    AS blocked_statement, blocking_activity.query   AS statement_in from  ( 	select 				 l.*, c.mode2, c.prt, l2.pid blocked, row_number() over(partition by l.pid order by c.prt) rid from   locks l join conflict c on l.mode = c.mode1 join locks l2 on l2.locktype = l.locktype and l2.mode = c.mode2 and l2.granted and l.pid != l2.pid and  coalesce(l.tid::text,'*') ||':'|| coalesce(l.relation::text,'*') ||':'|| coalesce(l.page::text,'*') ||':'|| coalesce(l.tuple::text,'*') = coalesce(l2.tid::text,'*') ||':'|| coalesce(l2.relation::text,'*') ||':'|| coalesce(l2.page::text,'*') ||':'|| coalesce(l2.tuple::text,'*') where not l.granted ) la join pg_catalog.pg_stat_activity blocked_activity  ON blocked_activity.pid = la.pid join pg_catalog.pg_stat_activity blocking_activity  ON blocking_activity.pid = la.blocked where la.rid = 1) , root_quest as (    select blocking_pid as blocking_pid from real_locks  except  select blocked_pid from real_locks )  select blocked_pid,        blocked_user,       blocking_pid,      blocking_user,     blocked_statement,    statement_in  from  real_locks union select real_locks.blocking_pid,  real_locks.blocking_user,  null::integer,  null::text,  real_locks.statement_in,  null::text  from real_locks,  root_quest  where real_locks.blocking_pid = root_quest.blocking_pid
-- next
-- source: PostgreLockManager.LOCK_ITEM_QUERY
select  coalesce(db.datname,'') as datname,  coalesce(lock.locktype,'') as locktype,  coalesce(lock.relation::regclass::varchar,'') as relation,  coalesce(lock.mode,'') as mode,  coalesce(lock.transactionid::varchar,'') as tid,  lock.page as page,  lock.tuple as tuple,  lock.pid as pid,  lock.granted from pg_catalog.pg_locks lock    left join pg_catalog.pg_database db      on db.oid = lock.database  where    lock.pid = $1
-- next
-- source: PostgreLockManager (kill)
SELECT pg_catalog.pg_terminate_backend($1)
